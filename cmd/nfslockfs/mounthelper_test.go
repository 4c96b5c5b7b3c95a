//go:build linux

package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

func TestParseMountArgs(t *testing.T) {
	for _, tc := range []struct {
		args string
		want string // the daemon's command line, or "error: TEXT"
		fake bool
	}{
		{"/b /m -o defaults,allow_other,_netdev", "--allow-other -- /b /m", false},
		{"/b /m -o rw,nosuid,nodev,noauto,nofail,x-systemd.requires-mounts-for=/b,comment=x", "-- /b /m", false},
		{"-n -v /b /m -o allow_other -o format=json,metrics_listen=:9464 -t nfslockfs",
			"--allow-other --format=json --metrics-listen=:9464 -- /b /m", false},
		{"/b /m -ofog,log_level=debug,log_file=/var/log/nfslockfs.log -s",
			"--log-level=debug --log-file=/var/log/nfslockfs.log -- /b /m", false},
		{"-f /b /m", "-- /b /m", true},
		{"/b /m -o frobnicate", `error: unknown mount option "frobnicate"`, false},
		{"/b /m -o ro", "error: option ro", false},
		{"/b /m -o format", `error: unknown mount option "format"`, false},
		{"/b", "error: want BACKING_DIR and MOUNTPOINT", false},
		{"/b /m -x", "error: unknown option -x", false},
		{"/b /m -o", "error: -o needs a value", false},
	} {
		req, err := parseMountArgs(strings.Fields(tc.args))
		if want, isErr := strings.CutPrefix(tc.want, "error: "); isErr {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("parseMountArgs(%s): %v, %v; want an error with %q", tc.args, req.daemonArgs, err, want)
			}
			continue
		}
		if err != nil || !slices.Equal(req.daemonArgs, strings.Fields(tc.want)) || req.fake != tc.fake {
			t.Errorf("parseMountArgs(%s) = %q, fake %v, %v; want %q, fake %v", tc.args, req.daemonArgs, req.fake, err, tc.want, tc.fake)
		}
	}
}

// fakeDaemonVar makes the test binary, started by startDaemon, play a
// daemon that behaves as its value says (see TestMain).
const fakeDaemonVar = "NFSLOCKFS_TEST_FAKE_DAEMON"

func TestMain(m *testing.M) {
	switch os.Getenv(fakeDaemonVar) {
	case "":
		os.Exit(m.Run())
	case "ready": // mounts, says so, serves a little, and is unmounted
		if os.Getenv(detachedEnv) != "1" {
			fmt.Fprintln(os.Stderr, "not started as detached")
			os.Exit(4)
		}
		daemon.SdNotify(false, daemon.SdNotifyReady)
		time.Sleep(100 * time.Millisecond)
		os.Exit(0)
	case "fail": // refuses the mount
		fmt.Fprintln(os.Stderr, "nfslockfs: backing directory: no such file or directory")
		os.Exit(1)
	case "hang": // never mounts (an NFS server that does not answer)
		time.Sleep(time.Hour)
		os.Exit(5)
	}
}

// TestStartDaemon: the helper returns once the daemon says it is ready,
// fails with the daemon's status when it exits first, and, when the daemon
// neither mounts nor exits, kills it at the timeout: mount(8) never waits
// for ever.
func TestStartDaemon(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		behaviour string
		want      string // "" for success
	}{
		{"ready", ""},
		{"fail", "nfslockfs did not mount: exit status 1"},
		{"hang", "nfslockfs did not mount within 500ms; killed it"},
	} {
		t.Run(tc.behaviour, func(t *testing.T) {
			t.Setenv(fakeDaemonVar, tc.behaviour)
			err := startDaemon(exe, []string{"--", "/backing", "/mnt"}, 500*time.Millisecond)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("startDaemon: %v, want success", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Fatalf("startDaemon: %v, want %q", err, tc.want)
			}
		})
	}
}
