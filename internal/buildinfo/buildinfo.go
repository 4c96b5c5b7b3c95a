// Package buildinfo says which build of nfslockfs a binary is, from the
// build information the Go toolchain embeds (runtime/debug.ReadBuildInfo):
// the module version that `go install ...@VERSION` or a build from a tagged
// clone records, the version-control revision, and the Go version.
package buildinfo

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// Info describes a build.
type Info struct {
	Version   string // the main module's version; "(devel)" when the toolchain knew none
	Revision  string // the commit it was built from, "" if unknown
	Modified  bool   // the work tree had changes not committed
	GoVersion string
}

// Read returns this binary's build information.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Version: "(devel)", GoVersion: "unknown"}
	}
	info := Info{Version: bi.Main.Version, GoVersion: bi.GoVersion}
	if info.Version == "" {
		info.Version = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// String is the line --version prints for program prog:
// "nfslockfs v1.2.0 (revision 0123abcd, go1.26.0)".
func (i Info) String(prog string) string {
	var extra []string
	if i.Revision != "" {
		rev := i.Revision[:min(len(i.Revision), 12)]
		if i.Modified {
			rev += "+modified"
		}
		extra = append(extra, "revision "+rev)
	}
	extra = append(extra, i.GoVersion)
	return fmt.Sprintf("%s %s (%s)", prog, i.Version, strings.Join(extra, ", "))
}
