// Package faultfs is a test-only stand-in for an NFS server: a passthrough
// FUSE filesystem over a local directory that can be told, at run time, to
// misbehave the way NFS does, and that counts the requests it serves.
//
// Mount it over the backing directory and point the lock library or the
// nfslockfs daemon at the mountpoint. Every FUSE request the kernel sends
// passes one gate before go-fuse's loopback performs it on the backing
// directory. The gate counts the request by type (the counts stand in for
// NFS round trips), then applies the faults currently set:
//
//   - Hang and Resume: a server outage. Requests block until Resume, except
//     that a request whose caller gets a signal fails with EINTR.
//   - SetLatency: a fixed delay before every request, a network round trip.
//   - Fail and FailRandomly: requests of one type fail with an errno (ESTALE,
//     EIO) before they reach the backing directory, so they do not happen.
//   - LoseLinkReplies: LINK creates the link and then answers EEXIST, as a
//     retransmitted NFS LINK does after the server's first reply was lost.
//
// To keep the counts close to NFS round trips, the mount caches nothing:
// entry, attribute and negative-entry timeouts are zero, so every path
// component of every path-based call costs a LOOKUP; READ and WRITE always
// come to the filesystem (no FUSE passthrough); and there are no extended
// attributes (as on NFSv3), which spares a GETXATTR before every write.
//
// What the kernel sends (Linux 6.18, files directly under the mountpoint;
// each directory level below it adds a LOOKUP per path; see
// TestCountsOfALockCycle):
//
//	open(O_CREAT|O_EXCL)   LOOKUP CREATE
//	write                  WRITE (one per write call)
//	close                  FLUSH, then RELEASE shortly after close returns
//	link                   LOOKUP×2 LINK
//	rename to a new name   LOOKUP×3 RENAME
//	rename over a file     LOOKUP×3 GETATTR RENAME
//	unlink                 LOOKUP UNLINK
//	stat, lstat            LOOKUP GETATTR (LOOKUP alone when absent)
//	open(O_RDONLY)         LOOKUP OPEN
//	read                   GETATTR, and READ unless at end of file
//	access                 LOOKUP ACCESS
//	flock                  nothing
//
// Locks: the mount does not ask the kernel to forward locks, so SETLK,
// SETLKW and GETLK are never sent; the kernel keeps flock(2) and fcntl(2)
// locks itself, on its inodes of this mount. Every process using the mount
// (including simulated hosts started after Mount, which share it) is
// excluded as on one NFS client with working locks; separate faultfs mounts
// of one backing directory do not exclude each other.
//
// The kernel retries a path-based system call once when the filesystem says
// ESTALE (for NFS's sake), so one injected ESTALE is invisible to the caller
// and the request is sent twice; fail two or more to make ESTALE surface.
//
// What it does not simulate: attribute caching and close-to-open
// consistency (there is no cache to be stale: every process sees every
// change at once), silly renames (.nfsXXXX files), retransmissions other
// than the lost LINK reply, server reboots and lock recovery, soft mounts'
// timeouts. An interrupted hung request fails with EINTR where a hard NFS
// mount would keep waiting unless the signal is fatal; Go's os package
// retries EINTR, so Go callers keep waiting. FORGET is not counted (it has
// no reply), nor is INTERRUPT (go-fuse answers it itself). Faults set for
// RELEASE and RELEASEDIR are consumed but not applied: they have no reply.
package faultfs
