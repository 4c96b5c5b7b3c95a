//go:build linux

package fusefs

import (
	"strings"

	"github.com/sirupsen/logrus"
)

// logWriter passes go-fuse's log lines to logrus: at debug level for the
// request traffic of Options.Debug, else as warnings (go-fuse then logs
// only what went wrong).
type logWriter struct {
	log   logrus.FieldLogger
	debug bool
}

func (w logWriter) Write(p []byte) (int, error) {
	msg := strings.TrimRight(string(p), "\n")
	if w.debug {
		w.log.Debug(msg)
	} else {
		w.log.Warn(msg)
	}
	return len(p), nil
}
