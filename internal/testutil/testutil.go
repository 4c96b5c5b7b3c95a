// Package testutil holds small helpers that tests of several packages share.
package testutil

import (
	"bytes"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// SyncBuffer is a bytes.Buffer safe for concurrent use: the stderr of a
// daemon or a logger's output, written while the test reads it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Names lists the names in dir: what a lock cycle left behind.
func Names(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// MountpointDir returns a fresh directory for nfslockfs to mount on, as
// t.TempDir does. The daemon marks its mountpoint immutable, so that
// nothing can be created there while no daemon serves it; when t ends, the
// mark is cleared (as an operator would, with chattr -i) so that the
// directory can be removed. Mount on it before registering the cleanups
// that unmount: those then run first.
func MountpointDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	t.Cleanup(func() {
		if out, err := exec.Command("chattr", "-i", dir).CombinedOutput(); err != nil {
			t.Errorf("chattr -i %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// StartWithOutput starts cmd with its standard output and error on a pipe
// of its own, and returns the pipe's read end, which reaches end of file
// when every process holding the write end has exited. Not StdoutPipe:
// Wait closes that one, losing what the command wrote just before it ended.
func StartWithOutput(cmd *exec.Cmd) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = w, w
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}
