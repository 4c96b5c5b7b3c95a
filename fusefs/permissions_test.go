//go:build linux

package fusefs

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/nfslockfs/nfslockfs/internal/testenv"
	"github.com/nfslockfs/nfslockfs/internal/testutil"
)

// With AllowOther, other users use the mount, and the kernel checks their
// permissions against the backing files': a user may read any lock but take
// locks only where the backing directory lets them write. As in the daemon
// (cmd/nfslockfs), the umask is 0, so a held lock's file lets every user
// wait for it.
func TestAllowOtherChecksBackingPermissions(t *testing.T) {
	testenv.NeedFUSE(t)
	const nobody, other = 65534, 65533
	defer syscall.Umask(syscall.Umask(0))
	top := t.TempDir()
	os.Chmod(top, 0o755)
	os.Chmod(filepath.Dir(top), 0o755) // the test's own temporary directory
	backing, mnt := filepath.Join(top, "backing"), testutil.MountpointDir(t)
	os.Chmod(mnt, 0o755)
	for _, dir := range []string{backing, filepath.Join(backing, "open"), filepath.Join(backing, "closed")} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(backing, "open"), 0o777)
	log := logrus.New()
	log.SetOutput(new(testutil.SyncBuffer))
	srv, err := Mount(backing, mnt, Options{AllowOther: true, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
			syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	})

	as := func(uid uint32, script string) string {
		cmd := exec.Command("bash", "-c", script)
		cmd.Env = append(os.Environ(), "MNT="+mnt)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	out := as(nobody, `
exec 8>"$MNT/open/mine" && echo "open: locked"
exec 9>"$MNT/closed/theirs" || echo "closed: refused"
cat "$MNT/open/mine" | grep -c "^pid: "
timeout 0.5 bash -c 'exec 7>"$MNT/open/mine"'; echo "same user waits: $?"
`)
	for _, want := range []string{"open: locked\n", "Permission denied", "closed: refused\n", "1\n", "same user waits: 124\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("as nobody: output lacks %q:\n%s", want, out)
		}
	}
	f, err := os.OpenFile(filepath.Join(mnt, "open/shared"), os.O_WRONLY|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out = as(other, `timeout 0.5 bash -c 'exec 7>"$MNT/open/shared"'; echo "another user waits: $?"`)
	if !strings.Contains(out, "another user waits: 124\n") {
		t.Errorf("another user opening a held lock: %s", out)
	}
}
