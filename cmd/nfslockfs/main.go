//go:build linux

// Command nfslockfs mounts a directory of NFS lock files (package nfslock)
// so that any program takes a cluster-wide lock by opening a file for
// writing, releases it by closing it or by dying, and `cat` shows who holds
// it (README.md describes each operation). It runs in the foreground and unmounts on SIGINT or SIGTERM.
// Invoked as mount.nfslockfs (a link to it), it is mount(8)'s helper for
// filesystems of type nfslockfs: see mounthelper.go.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/nfslockfs/nfslockfs/fusefs"
	"github.com/nfslockfs/nfslockfs/internal/buildinfo"
	"github.com/sirupsen/logrus"
)

const usage = `usage: nfslockfs [options] BACKING_DIR MOUNTPOINT

Mounts the locks of BACKING_DIR (a directory on the shared NFS export) on
MOUNTPOINT, an empty directory, and serves them until SIGINT or SIGTERM.
Opening MOUNTPOINT/name for writing blocks until the lock BACKING_DIR/name
is held for the opening process; closing it releases the lock; reading it
shows the holder.

options:
`

// config is what the command line asks for.
type config struct {
	backing, mountpoint string
	mount               fusefs.Options
	logLevel            logrus.Level
	logJSON             bool
	logFile             string // "" logs to stderr, or to the journal under systemd
	metricsListen       string // "" serves no metrics
}

func main() {
	if filepath.Base(os.Args[0]) == mountHelperName {
		os.Exit(mountHelperMain(os.Args[1:]))
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cfg, err := parseArgs(args, os.Stdout)
	if errors.Is(err, flag.ErrHelp) || errors.Is(err, errVersion) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "nfslockfs: %v (see 'nfslockfs --help')\n", err)
		return 2
	}
	detached := isDetached()
	log, detach, err := newLogger(cfg, detached)
	if err != nil {
		fmt.Fprintf(os.Stderr, "nfslockfs: %v\n", err)
		return 1
	}
	cfg.mount.Log = log
	metrics, err := startMetrics(cfg.metricsListen, log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "nfslockfs: %v\n", err)
		return 1
	}
	defer metrics.stop()
	cfg.mount.Events = metrics.events

	// The modes of the files the daemon creates come from its callers (the
	// kernel has applied the caller's umask to a mkdir) and from the lock
	// protocol (0666 for lock files, so that every user who may use the
	// mount may wait for a held lock: the kernel checks write permission on
	// the open). The daemon's own umask must not narrow them.
	syscall.Umask(0)
	// A hangup (a closed terminal) must not kill the daemon and leave a
	// dead mount behind.
	signal.Ignore(syscall.SIGHUP)
	stop := make(chan os.Signal, 2)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)

	srv, err := fusefs.Mount(cfg.backing, cfg.mountpoint, cfg.mount)
	if err != nil {
		fmt.Fprintf(os.Stderr, "nfslockfs: %v\n", err)
		return 1
	}
	if detached {
		detach()
	}
	// Ready: to systemd (Type=notify), or to mount.nfslockfs, which waits
	// for this before it lets mount(8) return.
	if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
		log.WithError(err).Warn("telling the service manager that the mount is ready failed")
	}
	select {
	case <-srv.Done():
		return 0 // unmounted from outside
	case sig := <-stop:
		log.WithField("signal", sig).Info("stopping")
		daemon.SdNotify(false, daemon.SdNotifyStopping)
	}
	// A second signal stops waiting for a busy mount to be let go.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case sig := <-stop:
			log.WithField("signal", sig).Warn("exiting without waiting for open lock files to be closed")
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn(err)
		return 1
	}
	return 0
}

// parseArgs parses "[options] BACKING_DIR MOUNTPOINT". Help goes to out;
// a malformed command line is an error.
func parseArgs(args []string, out io.Writer) (config, error) {
	var cfg config
	flags := flag.NewFlagSet("nfslockfs", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	flags.BoolVar(&cfg.mount.AllowOther, "allow-other", false, "let every user use the mount, with permissions checked against the backing files")
	logLevel := flags.String("log-level", "info", "log `level`: debug, info, warn, error")
	logFormat := flags.String("log-format", "text", "log `format`: text or json")
	flags.StringVar(&cfg.logFile, "log-file", "", "append the log to `file` instead of stderr (or the journal, under systemd)")
	flags.BoolVar(&cfg.mount.Debug, "debug", false, "log every FUSE request and reply (at debug level)")
	flags.BoolVar(&cfg.mount.NoLockOnOpen, "no-lock-on-open", false, "opening for writing takes no lock; only flock(2), fcntl(2) and lockf(3) do (for pidfile daemons)")
	format := flags.String("format", "text", "record `format` that reads show: text, sexp (the raw record) or json")
	flags.StringVar(&cfg.metricsListen, "metrics-listen", "", "serve Prometheus metrics at http://`address`/metrics (host:port, :port)")
	version := flags.Bool("version", false, "print the version and exit")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(out, flags)
		}
		return cfg, err
	}
	if *version {
		fmt.Fprintln(out, buildinfo.Read().String("nfslockfs"))
		return cfg, errVersion
	}
	if flags.NArg() != 2 {
		return cfg, fmt.Errorf("want BACKING_DIR and MOUNTPOINT, got %d arguments", flags.NArg())
	}
	cfg.backing, cfg.mountpoint = flags.Arg(0), flags.Arg(1)

	var err error
	if cfg.logLevel, err = logrus.ParseLevel(*logLevel); err != nil {
		return cfg, fmt.Errorf("--log-level: %w", err)
	}
	if cfg.mount.Debug {
		cfg.logLevel = max(cfg.logLevel, logrus.DebugLevel)
	}
	switch *logFormat {
	case "text":
	case "json":
		cfg.logJSON = true
	default:
		return cfg, fmt.Errorf("--log-format: %q is neither text nor json", *logFormat)
	}
	if cfg.mount.Format, err = fusefs.ParseFormat(*format); err != nil {
		return cfg, fmt.Errorf("--format: %w", err)
	}
	return cfg, nil
}

// errVersion is what parseArgs returns once it has printed the version.
var errVersion = errors.New("version printed")

// printHelp prints the usage and the options, spelled --name as users
// type them.
func printHelp(out io.Writer, flags *flag.FlagSet) {
	fmt.Fprint(out, usage)
	flags.VisitAll(func(f *flag.Flag) {
		name, text := flag.UnquoteUsage(f)
		if name != "" {
			name = " " + name
		}
		fmt.Fprintf(out, "  --%s%s\n        %s", f.Name, name, text)
		if f.DefValue != "" && f.DefValue != "false" {
			fmt.Fprintf(out, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(out)
	})
}
