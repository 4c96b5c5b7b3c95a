package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nfslockfs/nfslockfs/internal/testenv"
	"github.com/nfslockfs/nfslockfs/internal/testutil"
)

// mountScript runs a bash script in a mount namespace of its own where
// /usr/sbin holds only mount.nfslockfs, a link to the built nfslockfs, as
// a package installs it (/sbin is /usr/sbin here): mount(8) finds the
// helper there, and nothing of the machine's is changed. $BACKING, $MNT,
// $LOG (the daemon's log file) and $NFSLOCK are set; the mount is lazily
// detached when the script exits, whatever happened. It returns the
// script's combined output.
func mountScript(t *testing.T, script string) (string, error) {
	t.Helper()
	testenv.NeedFUSE(t)
	testenv.NeedTool(t, "unshare")
	testenv.NeedTool(t, "mount")
	sbin := t.TempDir()
	if err := os.Symlink(bin("nfslockfs"), filepath.Join(sbin, "mount.nfslockfs")); err != nil {
		t.Fatal(err)
	}
	backing, mnt := t.TempDir(), testutil.MountpointDir(t)
	tmp := t.TempDir()
	logFile := filepath.Join(tmp, "nfslockfs.log")
	scriptFile := filepath.Join(tmp, "script")
	script = `mount --bind "$SBIN" /usr/sbin; trap 'umount -l "$MNT" 2>/dev/null || true' EXIT` + "\n" + script
	if err := os.WriteFile(scriptFile, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "bash", "-euo", "pipefail", scriptFile)
	cmd.Env = append(cliEnv(), "SBIN="+sbin, "BACKING="+backing, "MNT="+mnt, "LOG="+logFile, "NFSLOCK="+bin("nfslock"), "PATH=/usr/bin:/bin")
	cmd.WaitDelay = time.Second
	timer := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	out, err := cmd.CombinedOutput()
	if log, _ := os.ReadFile(logFile); t.Failed() || err != nil {
		t.Logf("nfslockfs log:\n%s", log)
	} else if strings.Contains(string(log), "WARNING: DATA RACE") {
		t.Errorf("nfslockfs reported a data race:\n%s", log)
	}
	return string(out), err
}

// lockThroughMount is the part of the scripts below that locks through
// the mount: a held lock excludes the CLI on the backing directory, shows
// its holder, and is released by closing it; the daemon's log names both.
const lockThroughMount = `
exec 9>"$MNT/job"
test -e "$BACKING/job.nfs_lock"
if "$NFSLOCK" -n "$BACKING/job" true; then echo "CLI took a lock held through the mount"; exit 1; fi
grep -Eq "(^pid: |\"pid\":)$$([^0-9]|\$)" "$MNT/job" || { echo "the record does not name the shell:"; cat "$MNT/job"; exit 1; }
exec 9>&-
for i in $(seq 100); do "$NFSLOCK" -n "$BACKING/job" true && break; sleep 0.05; done
"$NFSLOCK" -n "$BACKING/job" true
grep -q 'lock released' "$LOG"
`

// TestMountHelper mounts with "mount -t nfslockfs BACKING MNT -o OPTIONS",
// locks through the mount, and unmounts with umount(8), after which the
// daemon exits.
func TestMountHelper(t *testing.T) {
	out, err := mountScript(t, `
mount -t nfslockfs "$BACKING" "$MNT" -o allow_other,format=json,log_level=debug,log_file="$LOG"
findmnt -n -o FSTYPE,OPTIONS "$MNT"
exec 8>"$MNT/shown"
cat "$MNT/shown"; echo
exec 8>&-
`+lockThroughMount+`
umount "$MNT"
for i in $(seq 100); do grep -q unmounted "$LOG" && break; sleep 0.05; done
grep -q unmounted "$LOG"
findmnt "$MNT" >/dev/null && { echo "still mounted"; exit 1; }
echo done
`)
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	for _, want := range []string{"fuse.nfslockfs ", "allow_other", `"pid":`, "done"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestMountHelperFstab mounts through an fstab line, the one the README
// gives, with "mount -T FSTAB MNT", and unmounts with umount(8).
func TestMountHelperFstab(t *testing.T) {
	out, err := mountScript(t, `
fstab=$(mktemp)
echo "$BACKING $MNT nfslockfs defaults,allow_other,_netdev,x-systemd.requires-mounts-for=$BACKING,log_file=$LOG 0 0" >"$fstab"
mount -T "$fstab" "$MNT"
findmnt -n -o SOURCE,FSTYPE "$MNT"
`+lockThroughMount+`
umount "$MNT"
for i in $(seq 100); do grep -q unmounted "$LOG" && break; sleep 0.05; done
grep -q unmounted "$LOG"
echo done
`)
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if !strings.Contains(out, "fuse.nfslockfs") || !strings.Contains(out, "done") {
		t.Errorf("output:\n%s", out)
	}
}

// TestMountHelperFails: a mount the daemon refuses fails mount(8) at once,
// with the daemon's reason, and leaves nothing mounted; an unknown option
// is refused before any daemon starts.
func TestMountHelperFails(t *testing.T) {
	out, err := mountScript(t, `
if mount -t nfslockfs "$BACKING/missing" "$MNT" -o log_file="$LOG" 2>&1; then echo "mounted a missing directory"; exit 1; fi
if mount -t nfslockfs "$BACKING" "$MNT" -o frobnicate 2>&1; then echo "mounted with an unknown option"; exit 1; fi
if mount -t nfslockfs "$BACKING" "$MNT" -o ro 2>&1; then echo "mounted read-only"; exit 1; fi
findmnt "$MNT" >/dev/null && { echo "something is mounted"; exit 1; }
echo done
`)
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	for _, want := range []string{"backing directory", `unknown mount option "frobnicate"`, "read-only", "done"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
