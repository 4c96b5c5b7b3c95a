//go:build linux

package main

import (
	"fmt"
	"io"
	"log/syslog"
	"os"
	"slices"
	"strings"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/sirupsen/logrus"
	lsyslog "github.com/sirupsen/logrus/hooks/syslog"
	"golang.org/x/sys/unix"
)

// newLogger returns the daemon's logger, writing where cfg and the
// environment say:
//
//   - to the file --log-file names, appending;
//   - to the journal, with priorities and fields, when stderr is connected
//     to it (a systemd service) or, once detached, when journald runs;
//   - once detached, otherwise to syslog, if it runs;
//   - to stderr.
//
// A daemon that mount.nfslockfs starts (detached) writes to stderr, which
// mount(8) shows, until it is mounted; detach then moves the log to its
// lasting place and lets go of stderr, before the daemon says it is ready.
func newLogger(cfg config, detached bool) (log *logrus.Logger, detach func(), err error) {
	log = logrus.New()
	log.SetOutput(os.Stderr)
	log.SetLevel(cfg.logLevel)
	if cfg.logJSON {
		log.SetFormatter(new(logrus.JSONFormatter))
	}
	var (
		lasting func()   // moves the log to where it stays
		keep    *os.File // what stdout and stderr become once detached; nil: /dev/null
	)
	switch {
	case cfg.logFile != "":
		f, err := os.OpenFile(cfg.logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("--log-file: %w", err)
		}
		lasting = func() { log.SetOutput(f) }
		keep = f // a crash's message is kept with the log
	case onJournal(detached):
		lasting = func() {
			log.SetOutput(io.Discard)
			log.AddHook(journalHook{})
		}
	case detached:
		hook, err := lsyslog.NewSyslogHook("", "", syslog.LOG_DAEMON, "nfslockfs")
		if err != nil {
			log.WithError(err).Warn("no journal, no syslog: the detached daemon's log is discarded; give -o log_file=PATH to keep it")
			lasting = func() { log.SetOutput(io.Discard) }
			break
		}
		lasting = func() {
			log.SetOutput(io.Discard)
			log.AddHook(hook)
		}
	default:
		return log, nil, nil
	}
	if !detached {
		lasting()
		return log, nil, nil
	}
	return log, func() {
		lasting()
		redirectStdio(keep, log)
	}, nil
}

// onJournal reports whether the log goes to the journal: stderr is
// connected to it, or, for a detached daemon, journald is listening.
func onJournal(detached bool) bool {
	if detached {
		return journal.Enabled()
	}
	is, err := journal.StderrIsJournalStream()
	return err == nil && is
}

// redirectStdio points stdout and stderr at f, or /dev/null when f is nil,
// so that the detached daemon holds nothing of the terminal or the pipe
// that mount(8) was started with.
func redirectStdio(f *os.File, log logrus.FieldLogger) {
	if f == nil {
		var err error
		if f, err = os.OpenFile(os.DevNull, os.O_WRONLY, 0); err != nil {
			log.WithError(err).Warn("cannot open /dev/null for stdout and stderr")
			return
		}
		defer f.Close()
	}
	for _, fd := range []int{1, 2} {
		if err := unix.Dup3(int(f.Fd()), fd, 0); err != nil {
			log.WithError(err).WithField("fd", fd).Warn("cannot redirect stdout or stderr")
		}
	}
}

// journalHook sends each log entry to the journal with its priority, the
// message and fields in MESSAGE as the text format shows them, and each
// field also as a journal field of its own (path=... as PATH=...).
type journalHook struct{}

func (journalHook) Levels() []logrus.Level { return logrus.AllLevels }

func (journalHook) Fire(e *logrus.Entry) error {
	vars := map[string]string{"SYSLOG_IDENTIFIER": "nfslockfs"}
	msg := e.Message
	keys := make([]string, 0, len(e.Data))
	for k := range e.Data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := fmt.Sprint(e.Data[k])
		msg += fmt.Sprintf(" %s=%q", k, v)
		if name := journalField(k); name != "" {
			vars[name] = v
		}
	}
	return journal.Send(msg, journalPriority(e.Level), vars)
}

// journalField turns a logrus field name into a journal field name
// (upper-case letters, digits, underscores, not starting with one), or ""
// if it cannot be one.
func journalField(k string) string {
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, k)
	name = strings.TrimLeft(name, "_")
	if name == "" || name[0] >= '0' && name[0] <= '9' || name == "MESSAGE" || name == "PRIORITY" {
		return ""
	}
	return name
}

func journalPriority(l logrus.Level) journal.Priority {
	switch l {
	case logrus.PanicLevel:
		return journal.PriEmerg
	case logrus.FatalLevel:
		return journal.PriCrit
	case logrus.ErrorLevel:
		return journal.PriErr
	case logrus.WarnLevel:
		return journal.PriWarning
	case logrus.InfoLevel:
		return journal.PriInfo
	}
	return journal.PriDebug
}
