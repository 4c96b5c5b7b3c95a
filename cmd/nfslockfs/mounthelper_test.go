//go:build linux

package main

import (
	"slices"
	"strings"
	"testing"
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
