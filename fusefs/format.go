//go:build linux

package fusefs

import (
	"fmt"

	"github.com/nfslockfs/nfslockfs/nfslock"
	"github.com/nfslockfs/nfslockfs/nfslock/lockview"
)

// A Format is how reads of a lock file show its holder.
type Format int

const (
	// FormatText is one "field: value" line per field, for people and grep:
	// host, pid, started (if the record has it), held-since, message, as
	// package lockview writes them (and nfslock status shows them).
	FormatText Format = iota
	// FormatSexp is the record exactly as it is on disk (Core's layout).
	FormatSexp
	// FormatJSON is one JSON object per record, package lockview's, with
	// the holder's state as this host judges it.
	FormatJSON
)

var formatNames = [...]string{FormatText: "text", FormatSexp: "sexp", FormatJSON: "json"}

// ParseFormat returns the format called name: "text", "sexp" or "json".
func ParseFormat(name string) (Format, error) {
	for f, n := range formatNames {
		if n == name {
			return Format(f), nil
		}
	}
	return 0, fmt.Errorf("unknown record format %q (want text, sexp or json)", name)
}

func (f Format) String() string {
	if uint(f) < uint(len(formatNames)) {
		return formatNames[f]
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// render returns what a reader of a lock file held by h sees.
func (f Format) render(h nfslock.Holder) []byte {
	switch f {
	case FormatSexp:
		return h.Raw
	case FormatJSON:
		return lockview.NewObject(&h).AppendJSON(nil)
	}
	return lockview.AppendText(nil, h)
}
