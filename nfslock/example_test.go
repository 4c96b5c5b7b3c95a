//go:build linux

package nfslock_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/nfslockfs/nfslockfs/nfslock"
)

// exampleDir stands in for a directory on the shared NFS export.
func exampleDir() string {
	dir, err := os.MkdirTemp("", "nfslock-example-")
	if err != nil {
		log.Fatal(err)
	}
	return dir
}

// Take a lock if it is free, and find out who holds it if not.
func ExampleTryLock() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "nightly")

	l, err := nfslock.TryLock(path, nfslock.WithMessage("nightly build"))
	if err != nil {
		log.Fatal(err)
	}
	defer l.Unlock()

	_, err = nfslock.TryLock(path)
	var held *nfslock.HeldError
	if errors.As(err, &held) {
		fmt.Printf("held by this process: %v, for %q\n", held.Holder.Record.Pid == os.Getpid(), held.Holder.Record.Message)
	}
	// Output: held by this process: true, for "nightly build"
}

// Wait for a lock, but not for ever.
func ExampleAcquire() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "db-migration")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := nfslock.Acquire(ctx, path, nfslock.WithMessage("migrating schema"))
	if errors.Is(err, nfslock.ErrLocked) {
		log.Fatalf("gave up: %v", err) // names the holder and how long it has held the lock
	}
	if err != nil {
		log.Fatal(err)
	}
	defer l.Unlock()
	fmt.Println("migrating")
	// Output: migrating
}

// Run a function while holding a lock, Core style.
func ExampleCriticalSection() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "report")

	err := nfslock.CriticalSection(path, time.Minute, func() error {
		fmt.Println("only one host at a time prints this")
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output: only one host at a time prints this
}

// Show who holds a lock, as `nfslock status` does.
func ExampleInspect() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "render")
	l, err := nfslock.TryLock(path, nfslock.WithMessage("frame 1-240"))
	if err != nil {
		log.Fatal(err)
	}
	defer l.Unlock()

	h, err := nfslock.Inspect(path)
	switch {
	case errors.Is(err, nfslock.ErrNotLocked):
		fmt.Println("free")
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Printf("%s holder, message %q\n", h.State, h.Record.Message)
	}
	// Output: alive holder, message "frame 1-240"
}

// In a lease directory a holder checks its lock before each action of its
// critical section, and passes its fencing token to the storage it writes.
func ExampleLock_Err() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, nfslock.LeaseFile), []byte("30s\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	l, err := nfslock.Acquire(context.Background(), filepath.Join(dir, "nightly"))
	if err != nil {
		log.Fatal(err)
	}
	defer l.Unlock()
	for step := range 2 {
		if err := l.Err(); err != nil { // errors.Is(err, nfslock.ErrLost)
			log.Fatal(err)
		}
		fmt.Printf("step %d with token %d\n", step, l.Token())
	}
	// Output:
	// step 0 with token 1
	// step 1 with token 1
}
