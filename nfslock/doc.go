//go:build linux

// Package nfslock implements mutual exclusion between processes on many hosts
// that share a directory over NFS, with the lock-file protocol of Jane
// Street Core's Lock_file.Nfs, so that its locks and Core's interoperate.
//
// A lock on path P is held if and only if the file P.nfs_lock exists. It
// holds a holder record naming the host, the process and a free-form message
// (see Record). A lock is taken by writing the record into a fresh attempt
// file and hard-linking that file to P.nfs_lock: link(2) is the one
// operation that NFS makes atomic on the server. The record is complete
// before the lock exists, so no reader ever sees a half-written lock.
//
// A lock whose holder process has died on this host is stale: the next
// acquirer on this host removes it (safely against other cleaners, under an
// flock on P.nfs_lock and only if the record is byte-for-byte the one judged
// stale). A lock held on another host cannot be judged from here: it stays
// held until its holder releases it or an operator breaks it (Break).
//
// Unless its directory opts in to leases (LeaseFile): there every holder
// renews its lock every third of the lease by the NFS server's clock, any
// host breaks a lock not renewed for a whole lease (judged by the server's
// clock only, and safely when several hosts try at once), a holder that
// could not renew in time learns it (Lock.Lost, Lock.Err, ErrLost), and each
// acquisition gets a fencing token (Lock.Token). Core's processes still see
// ordinary locks.
//
// Two APIs share one implementation. The handle API (TryLock, Acquire and
// the methods of Lock) is what Go programs and the rest of this project use.
// The Core-style API (Create, BlockingCreate, CriticalSection, Unlock,
// UnlockAll, ...) mirrors Lock_file.Nfs for programs ported from OCaml.
//
// Limits: liveness is judged only for holders on this host, by kill(pid, 0)
// and the process start time in /proc, so the package works on Linux only
// (elsewhere it does not build: its files are constrained to linux).
// The hostname is read once per process.
package nfslock
