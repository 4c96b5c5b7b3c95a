package fusefs

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nfslockfs/nfslockfs/nfslock"
)

// A Format is how reads of a lock file show its holder.
type Format int

const (
	// FormatText is one "field: value" line per field, for people and grep:
	// host, pid, started (if the record has it), held-since, message.
	// Non-printable bytes of a value are escaped as in a Go string, so that
	// every field stays on its line.
	FormatText Format = iota
	// FormatSexp is the record exactly as it is on disk (Core's layout).
	FormatSexp
	// FormatJSON is one JSON object per record, with the holder's state as
	// this host judges it ("alive", "dead", "remote", "corrupt").
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
		return renderJSON(h)
	}
	return renderText(h)
}

func renderText(h nfslock.Holder) []byte {
	var b strings.Builder
	field := func(name, value string) { fmt.Fprintf(&b, "%s: %s\n", name, value) }
	if h.State == nfslock.HolderCorrupt {
		field("corrupt-record", escape(string(h.Raw)))
	} else {
		field("host", escape(h.Record.Host))
		field("pid", strconv.Itoa(h.Record.Pid))
		if !h.Record.StartTime.IsZero() {
			field("started", timestamp(h.Record.StartTime))
		}
	}
	field("held-since", timestamp(h.Since))
	if h.State != nfslock.HolderCorrupt {
		field("message", escape(h.Record.Message))
	}
	return []byte(b.String())
}

// jsonRecord is the JSON layout. Times are RFC 3339 in UTC; a string that
// is not UTF-8 has its invalid bytes replaced by U+FFFD (the sexp format
// keeps them).
type jsonRecord struct {
	Host      string `json:"host,omitempty"`
	Pid       int    `json:"pid,omitempty"`
	Started   string `json:"started,omitempty"`
	HeldSince string `json:"held_since"`
	Message   string `json:"message"`
	State     string `json:"state"`
	Raw       string `json:"raw,omitempty"` // the record, when it is corrupt
}

func renderJSON(h nfslock.Holder) []byte {
	r := jsonRecord{
		Host:      h.Record.Host,
		Pid:       h.Record.Pid,
		HeldSince: timestamp(h.Since),
		Message:   h.Record.Message,
		State:     h.State.String(),
	}
	if !h.Record.StartTime.IsZero() {
		r.Started = timestamp(h.Record.StartTime)
	}
	if h.State == nfslock.HolderCorrupt {
		r.Raw = string(h.Raw)
	}
	data, _ := json.Marshal(r) // cannot fail: strings and ints only
	return append(data, '\n')
}

func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// escape returns s with backslashes, invalid UTF-8 and non-printable
// characters escaped as in a Go string literal, and everything else (spaces
// and quotes included) as it is.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case strconv.IsPrint(r):
			b.WriteString(s[i : i+size])
		default:
			q := strconv.QuoteRune(r) // 'x' with x escaped
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}
