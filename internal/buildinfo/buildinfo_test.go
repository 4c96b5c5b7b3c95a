package buildinfo

import (
	"runtime"
	"testing"
)

func TestReadNamesTheGoVersion(t *testing.T) {
	info := Read()
	if info.GoVersion != runtime.Version() {
		t.Errorf("GoVersion = %q, want %q", info.GoVersion, runtime.Version())
	}
	if info.Version == "" {
		t.Error("Version is empty; want a module version or (devel)")
	}
}

func TestString(t *testing.T) {
	for _, tc := range []struct {
		info Info
		want string
	}{
		{Info{Version: "v1.2.0", GoVersion: "go1.26.0"}, "nfslockfs v1.2.0 (go1.26.0)"},
		{Info{Version: "v0.0.0-20261201-0123456789ab", Revision: "0123456789abcdef", Modified: true, GoVersion: "go1.26.0"},
			"nfslockfs v0.0.0-20261201-0123456789ab (revision 0123456789ab+modified, go1.26.0)"},
	} {
		if got := tc.info.String("nfslockfs"); got != tc.want {
			t.Errorf("String = %q, want %q", got, tc.want)
		}
	}
}
