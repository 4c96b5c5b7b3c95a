//go:build linux

package fusefs

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nfslockfs/nfslockfs/nfslock"
)

func TestInterruptingSignal(t *testing.T) {
	set := sigsetOf
	for _, tc := range []struct {
		name string
		st   threadStatus
		want syscall.Signal
	}{
		{"nothing pending", threadStatus{}, 0},
		{"SIGKILL", threadStatus{pending: set(syscall.SIGKILL)}, syscall.SIGKILL},
		{"SIGINT without handler", threadStatus{pending: set(syscall.SIGINT)}, syscall.SIGINT},
		{"SIGINT caught", threadStatus{pending: set(syscall.SIGINT), caught: set(syscall.SIGINT)}, syscall.SIGINT},
		{"SIGINT ignored", threadStatus{pending: set(syscall.SIGINT), ignored: set(syscall.SIGINT)}, 0},
		{"SIGINT blocked", threadStatus{pending: set(syscall.SIGINT), blocked: set(syscall.SIGINT)}, 0},
		{"SIGALRM caught", threadStatus{pending: set(syscall.SIGALRM), caught: set(syscall.SIGALRM)}, syscall.SIGALRM},
		{"SIGCHLD caught", threadStatus{pending: set(syscall.SIGCHLD), caught: set(syscall.SIGCHLD)}, 0},
		{"SIGCHLD default", threadStatus{pending: set(syscall.SIGCHLD)}, 0},
		{"SIGWINCH caught", threadStatus{pending: set(syscall.SIGWINCH), caught: set(syscall.SIGWINCH)}, 0},
		{"SIGURG caught (Go preemption)", threadStatus{pending: set(syscall.SIGURG), caught: set(syscall.SIGURG)}, 0},
		{"SIGTSTP default", threadStatus{pending: set(syscall.SIGTSTP)}, 0},
		{"SIGPIPE caught", threadStatus{pending: set(syscall.SIGPIPE), caught: set(syscall.SIGPIPE)}, 0},
		{"SIGPIPE default", threadStatus{pending: set(syscall.SIGPIPE)}, syscall.SIGPIPE},
		{"realtime default", threadStatus{pending: set(syscall.Signal(40))}, syscall.Signal(40)},
		{"SIGCHLD then SIGKILL", threadStatus{pending: set(syscall.SIGCHLD, syscall.SIGKILL), caught: set(syscall.SIGCHLD)}, syscall.SIGKILL},
	} {
		if got := tc.st.interruptingSignal(); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestReadThreadStatus(t *testing.T) {
	st, err := readThreadStatus(syscall.Gettid())
	if err != nil {
		t.Fatal(err)
	}
	if st.tgid != os.Getpid() {
		t.Errorf("tgid of one of our threads: %d, want %d", st.tgid, os.Getpid())
	}
	if !st.caught.has(syscall.SIGURG) {
		t.Error("the Go runtime's SIGURG handler is not seen as caught")
	}
	if got := commandLine(os.Getpid()); !strings.HasPrefix(got, os.Args[0]) {
		t.Errorf("command line %q, want it to start with %q", got, os.Args[0])
	}
}

// TestCommandLineCutAtCharacter: the message of an opener whose command
// line is over the limit is cut, marked, and still text.
func TestCommandLineCutAtCharacter(t *testing.T) {
	// read, a builtin, keeps the shell itself running (it execs a last
	// external command) until its input ends.
	cmd := exec.Command("sh", "-c", "read -r x", "sh", strings.Repeat("é", nfslock.MaxMessageLen))
	input, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { input.Close(); cmd.Wait() }()
	// Start returns as soon as the child's exec let go of the parent (vfork),
	// before the kernel has set up the new command line: it reads empty for
	// a moment. An opener of the mount, blocked in open(2), is long past it.
	got := commandLine(cmd.Process.Pid)
	for deadline := time.Now().Add(5 * time.Second); got == "" && time.Now().Before(deadline); got = commandLine(cmd.Process.Pid) {
		time.Sleep(time.Millisecond)
	}
	if len(got) > nfslock.MaxMessageLen || !utf8.ValidString(got) || !strings.HasPrefix(got, "sh -c read -r x sh é") || !strings.HasSuffix(got, "é...") {
		t.Errorf("command line of %d bytes, valid UTF-8 %v, ending %q", len(got), utf8.ValidString(got), got[max(0, len(got)-8):])
	}
}

func TestRenderText(t *testing.T) {
	since := time.Date(2026, 11, 27, 8, 0, 3, 0, time.UTC)
	h := nfslock.Holder{
		Record: nfslock.Record{Host: "node17", Pid: 4242, Message: "make -j8 \"nightly\"\n\\\xff",
			StartTime: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)},
		Since: since,
		State: nfslock.HolderAlive,
	}
	want := "host: node17\npid: 4242\nstarted: 2026-11-27T08:00:00.000000Z\nheld-since: 2026-11-27T08:00:03.000000Z\n" +
		"message: make -j8 \"nightly\"\\n\\\\\\xff\n"
	if got := string(FormatText.render(h)); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	corrupt := nfslock.Holder{Raw: []byte("((host"), Since: since, State: nfslock.HolderCorrupt}
	if got, want := string(FormatText.render(corrupt)), "held-since: 2026-11-27T08:00:03.000000Z\nraw: ((host\n"; got != want {
		t.Errorf("corrupt: got %q, want %q", got, want)
	}
}

func TestParseFormat(t *testing.T) {
	for _, f := range []Format{FormatText, FormatSexp, FormatJSON} {
		if got, err := ParseFormat(f.String()); err != nil || got != f {
			t.Errorf("ParseFormat(%q) = %v, %v", f, got, err)
		}
	}
	if _, err := ParseFormat("xml"); err == nil {
		t.Error("ParseFormat(xml) did not fail")
	}
}
