//go:build linux

// Package fusefs is the nfslockfs filesystem: a FUSE view of a directory of
// nfslock locks, through which any program takes a cluster-wide lock by
// opening a file for writing and releases it by closing it, or by dying.
//
// MOUNTPOINT/a/b/name is the lock BACKING/a/b/name (package nfslock).
// Opening it for writing blocks until the lock is acquired on behalf of the
// calling process: the record names that process (its pid and start time)
// and its command line, so the lock outlives neither the process nor, if the
// daemon dies, the process's life. The last close of the open file releases
// it. Reading shows the current holder. Directories mirror the backing
// directory; the protocol's helper files are hidden. flock(2), fcntl(2)
// and lockf(3) on a lock file take the same cluster lock, exclusive or
// shared (filelocks.go); none is ever granted on this node alone.
// README.md describes what each operation does; Mount and Server are the
// whole API.
//
// Limits: Linux only (the caller's signals and identity come from /proc).
// A lock is the open file's, as with flock(2): descriptors that share it
// (dup, fork) share the lock, and it is released when the last one closes.
package fusefs
