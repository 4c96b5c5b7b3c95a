//go:build linux

package nfslock

import (
	"io"
	"os"

	"github.com/sirupsen/logrus"
)

// An Option configures how a lock is taken.
type Option func(*options)

type options struct {
	message string
	owner   int // pid named in the record; 0 means this process
	log     logrus.FieldLogger
	onStale func(Holder)
	vouch   bool
}

// WithMessage sets the record's message, which readers show beside the
// holder (Core's ?message). Any bytes are allowed.
func WithMessage(msg string) Option { return func(o *options) { o.message = msg } }

// WithOwner names another process of this host as the holder: its pid and
// start time go into the record, so the lock becomes stale when that process
// dies, whatever becomes of this one. The FUSE daemon names the process that
// opened the file; the CLI names the command it runs.
func WithOwner(pid int) Option { return func(o *options) { o.owner = pid } }

// WithLogger logs each acquire and release at info level, and at debug
// level each poll of a held lock and a wait queued behind this process (its
// own lock, or its earlier waiters). Without it the package logs nothing.
func WithLogger(l logrus.FieldLogger) Option { return func(o *options) { o.log = l } }

// WithStaleCleanup calls f with the dead holder of each stale lock that
// the acquisition removes before taking the lock (a count for monitoring).
// f runs on the acquiring goroutine and must return promptly.
func WithStaleCleanup(f func(stale Holder)) Option { return func(o *options) { o.onStale = f } }

// WithVouch makes this process answer for the lock to the other processes
// of this host while it holds it, so that they take it for held even when
// the process its record names (WithOwner) has exited, until this process
// names another (SetOwner), releases the lock or dies. The FUSE daemon
// vouches for the locks it takes for openers, whose forked children may
// keep a lock after the opener exits. See vouch.go for the limits.
func WithVouch() Option { return func(o *options) { o.vouch = true } }

var discardLogger = &logrus.Logger{Out: io.Discard, Formatter: new(logrus.TextFormatter), Level: logrus.PanicLevel}

func buildOptions(opts []Option) *options {
	o := &options{log: discardLogger, onStale: func(Holder) {}}
	for _, opt := range opts {
		opt(o)
	}
	return o
}

// record builds the holder record these options describe.
func (o *options) record() (Record, error) {
	pid := o.owner
	if pid == 0 {
		pid = os.Getpid()
	}
	return recordFor(pid, o.message)
}
