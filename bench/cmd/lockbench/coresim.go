package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"syscall"
	"time"
)

// coreRetryMax bounds Core's wait between attempts: blocking_create sleeps
// a uniformly random time of up to 300 ms after each failed create.
const coreRetryMax = 300 * time.Millisecond

// coreSim takes a lock the way Core's Lock_file.Nfs v2 does, with the same
// backing-store requests per attempt as we understand Core's create (SPEC
// §1-§2): read the lock file to judge staleness (open, read, close), write
// an attempt file (open O_EXCL, write, close), link it to P.nfs_lock, remove
// it; and after a successful link write P (open, write, close). It exists to
// put Core's retry policy beside ours with the same hold times; its files
// are the protocol's, so it excludes and is excluded by nfslock.
type coreSim struct {
	path   string
	record []byte
}

func newCoreSim(path string) (*coreSim, error) {
	host, err := os.Hostname()
	if err != nil {
		return nil, err
	}
	return &coreSim{path: path, record: fmt.Appendf(nil, "((host %s)(pid %d)(message lockbench))", host, os.Getpid())}, nil
}

func (c *coreSim) lock() error {
	for {
		ok, err := c.attempt()
		if ok || err != nil {
			return err
		}
		time.Sleep(mrand.N(coreRetryMax))
	}
}

func (c *coreSim) attempt() (bool, error) {
	lock := c.path + ".nfs_lock"
	if fd, err := syscall.Open(lock, syscall.O_RDONLY|syscall.O_CLOEXEC, 0); err == nil {
		var buf [512]byte
		syscall.Read(fd, buf[:])
		syscall.Close(fd)
	}
	var id [16]byte
	rand.Read(id[:])
	attempt := c.path + "." + hex.EncodeToString(id[:]) + ".lock-attempt"
	if err := writeFile(attempt, syscall.O_EXCL, c.record); err != nil {
		return false, err
	}
	linkErr := syscall.Link(attempt, lock)
	syscall.Unlink(attempt)
	switch linkErr {
	case nil:
		return true, writeFile(c.path, syscall.O_TRUNC, c.record)
	case syscall.EEXIST:
		return false, nil
	}
	return false, &os.LinkError{Op: "link", Old: attempt, New: lock, Err: linkErr}
}

func (c *coreSim) unlock() error {
	syscall.Unlink(c.path)
	if err := syscall.Unlink(c.path + ".nfs_lock"); err != nil {
		return &os.PathError{Op: "unlink", Path: c.path + ".nfs_lock", Err: err}
	}
	return nil
}

func writeFile(name string, flag int, data []byte) error {
	fd, err := syscall.Open(name, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_CLOEXEC|flag, 0o666)
	if err != nil {
		return &os.PathError{Op: "open", Path: name, Err: err}
	}
	_, err = syscall.Write(fd, data)
	if cerr := syscall.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return &os.PathError{Op: "write", Path: name, Err: err}
	}
	return nil
}
