package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nfslockfs/nfslockfs/internal/testutil"
)

// asUser runs the rest of a shell command line as uid (and gid) uid.
func asUser(uid int) string {
	return fmt.Sprintf("setpriv --reuid=%d --regid=%d --clear-groups", uid, uid)
}

// A cluster's users share lock directories: every user may wait for a lock
// another user holds, whichever tool took it, and a user who meets another
// user's stale lock in a sticky directory is told so, not "operation not
// permitted" as when breaking a live one.
func TestCLIMultiUser(t *testing.T) {
	const nobody, other = 65534, 65533
	backing, mnt := t.TempDir(), testutil.MountpointDir(t)
	for _, dir := range []string{filepath.Dir(backing), filepath.Dir(mnt), mnt, binDir} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A shared lock directory, as /tmp: everyone may create, only owners remove.
	if err := os.Chmod(backing, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	d := startDaemonOn(t, backing, mnt, "--allow-other")

	// Taken by the CLI under a common umask, waited for through the mount
	// by another user.
	_, lines := d.background(t, `umask 022; exec "$NFSLOCK" -n "$BACKING/x" sh -c 'echo held; exec sleep 60'`)
	expectLine(t, lines, "held")
	if fi, err := os.Stat(d.lockPath("x") + ".nfs_lock"); err != nil || fi.Mode().Perm() != 0o666 {
		t.Errorf("x.nfs_lock made by the CLI: %v, %v; want mode 0666, as the mount makes it", fi.Mode(), err)
	}
	out, _ := d.shell(t, asUser(nobody)+` timeout 0.5 bash -c 'exec 9>>"$MNT/x"; echo opened'; echo "open: $?"`)
	if !strings.Contains(out, "open: 124\n") {
		t.Errorf("another user opening through the mount a lock the CLI holds: %q; want it to wait (timeout's 124), not to be refused", out)
	}

	// A stale lock of nobody's in the sticky directory.
	writeStaleRecord(t, backing, "stale")
	stale := filepath.Join(backing, "stale.nfs_lock")
	if err := os.Chown(stale, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(stale, 0o666); err != nil { // as nfslock and the mount make them
		t.Fatal(err)
	}
	out, _ = d.shell(t, asUser(other)+` "$NFSLOCK" -n "$BACKING/stale" true; echo "cli: $?"`)
	if !strings.Contains(out, "cli: 66\n") || !strings.Contains(out, "stale") || !strings.Contains(out, "sticky") || !strings.Contains(out, fmt.Sprintf("uid %d", nobody)) {
		t.Errorf("another user meeting a stale lock in a sticky directory: %q; want exit 66 and an error saying the stale lock belongs to uid %d in a sticky directory", out, nobody)
	}
	out, _ = d.shell(t, asUser(other)+` "$NFSLOCK" break --force "$BACKING/stale"; echo "break: $?"`)
	if !strings.Contains(out, "break: 1\n") || !strings.Contains(out, "breaking") || !strings.Contains(out, "sticky") {
		t.Errorf("another user breaking a lock in a sticky directory: %q; want exit 1 and an error saying why", out)
	}
	// The mount's daemon, as root, cleans up a stale lock for any user.
	out, _ = d.shell(t, asUser(other)+` bash -c 'exec 9>"$MNT/stale" && echo took'`)
	if !strings.Contains(out, "took") {
		t.Errorf("another user taking the stale lock through the mount: %q; want it cleaned up and taken", out)
	}
}
