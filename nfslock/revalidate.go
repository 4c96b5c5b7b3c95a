//go:build linux

package nfslock

import "os"

// revalidateDir makes the lookups in dir that follow see the server's
// entries as they are now. An NFS client answers a stat from a file's
// cached attributes for 3 to 60 seconds (acregmin to acregmax), and trusts
// a cached name as long as it trusts its directory's cached attributes: an
// lstat polled alone on a lock released by another host reports it held
// until those expire (a median of 2.9 s per cross-host handoff on NFSv3 in
// the real-NFS rig). Opening the directory makes the client fetch its
// attributes (close-to-open consistency); a changed directory invalidates
// the names cached in it, so the lstat asks the server. It costs about one
// round trip, and nothing on a local filesystem. Errors are ignored: the
// lookup that follows reports them.
//
// Limits: a directory that is an NFS mount's root is revalidated only when
// its cached attributes expire (close-to-open does not apply to a mount
// point crossed on the way), and an NFSv4 client holding a read delegation
// of the lock file trusts its cached name and attributes whatever the
// directory says: right, since the server recalls the delegation before
// another client removes the file.
func revalidateDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		f.Close()
	}
}
