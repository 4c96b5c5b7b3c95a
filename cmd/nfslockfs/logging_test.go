//go:build linux

package main

import (
	"testing"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/sirupsen/logrus"
)

func TestJournalField(t *testing.T) {
	for field, want := range map[string]string{
		"path":      "PATH",
		"held":      "HELD",
		"log-level": "LOG_LEVEL",
		"_private":  "PRIVATE",
		"9lives":    "",
		"message":   "", // MESSAGE and PRIORITY are the entry's own
		"priority":  "",
		"":          "",
	} {
		if got := journalField(field); got != want {
			t.Errorf("journalField(%q) = %q, want %q", field, got, want)
		}
	}
}

func TestJournalPriority(t *testing.T) {
	for level, want := range map[logrus.Level]journal.Priority{
		logrus.ErrorLevel: journal.PriErr,
		logrus.WarnLevel:  journal.PriWarning,
		logrus.InfoLevel:  journal.PriInfo,
		logrus.DebugLevel: journal.PriDebug,
		logrus.TraceLevel: journal.PriDebug,
	} {
		if got := journalPriority(level); got != want {
			t.Errorf("journalPriority(%v) = %v, want %v", level, got, want)
		}
	}
}
