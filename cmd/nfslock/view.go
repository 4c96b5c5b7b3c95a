package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nfslockfs/nfslockfs/nfslock"
)

// A lockView is one lock as status and break show it: a block of
// "key: value" lines (writeText) or one JSON object (writeJSON).
type lockView struct {
	path   string
	holder *nfslock.Holder // nil: the lock is free
}

// state names the holder's state: free, alive (a running process of this
// host), dead (a process of this host that is gone: the lock is stale),
// unknown (a process of another host) or corrupt (unparsable record).
func (v lockView) state() string {
	switch {
	case v.holder == nil:
		return "free"
	case v.holder.State == nfslock.HolderRemote:
		return "unknown"
	}
	return v.holder.State.String()
}

// stateText spells states out for people.
var stateText = map[string]string{
	"dead":    "dead (stale)",
	"unknown": "unknown (other host)",
}

const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

// writeText writes the layout the FUSE filesystem shows for a lock, plus
// path, state and held-for. Host, message and a corrupt record's bytes are
// quoted with Go's escapes unless they are one line of plain text.
func (v lockView) writeText(w io.Writer) {
	state := v.state()
	if long, ok := stateText[state]; ok {
		state = long
	}
	fmt.Fprintf(w, "path: %s\nstate: %s\n", v.path, state)
	h := v.holder
	if h == nil {
		return
	}
	if h.State != nfslock.HolderCorrupt {
		fmt.Fprintf(w, "host: %s\npid: %d\n", printable(h.Record.Host), h.Record.Pid)
		if !h.Record.StartTime.IsZero() {
			fmt.Fprintf(w, "started: %s\n", h.Record.StartTime.UTC().Format(timeLayout))
		}
	}
	if !h.Since.IsZero() {
		fmt.Fprintf(w, "held-since: %s\nheld-for: %s\n", h.Since.UTC().Format(timeLayout), time.Since(h.Since).Round(time.Second))
	}
	if h.State == nfslock.HolderCorrupt {
		fmt.Fprintf(w, "raw: %s\n", strconv.Quote(string(h.Raw)))
	} else {
		fmt.Fprintf(w, "message: %s\n", printable(h.Record.Message))
	}
}

// printable returns s as it is if it is one line of printable text that
// cannot be mistaken for a quoted string, and quoted otherwise.
func printable(s string) string {
	plain := utf8.ValidString(s) && !strings.HasPrefix(s, `"`) && strings.TrimSpace(s) == s &&
		strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0
	if plain {
		return s
	}
	return strconv.Quote(s)
}

// lockJSON is the JSON form of a lockView. Fields that do not apply are
// left out. Message and raw are text when they are valid UTF-8, and
// otherwise given in hex (message_hex, raw_hex), which JSON text can carry
// exactly, as in the record fixtures' expected.json.
type lockJSON struct {
	Path       string     `json:"path"`
	State      string     `json:"state"`
	Host       string     `json:"host,omitempty"`
	Pid        int        `json:"pid,omitempty"`
	StartTime  *time.Time `json:"start_time,omitempty"`
	HeldSince  *time.Time `json:"held_since,omitempty"` // P.nfs_lock's mtime
	Message    *string    `json:"message,omitempty"`
	MessageHex string     `json:"message_hex,omitempty"`
	Raw        *string    `json:"raw,omitempty"` // corrupt records only
	RawHex     string     `json:"raw_hex,omitempty"`
}

func (v lockView) writeJSON(w io.Writer) error {
	j := lockJSON{Path: v.path, State: v.state()}
	if h := v.holder; h != nil {
		j.HeldSince = utcOrNil(h.Since)
		if h.State == nfslock.HolderCorrupt {
			j.Raw, j.RawHex = textOrHex(h.Raw)
		} else {
			j.Host, j.Pid = h.Record.Host, h.Record.Pid
			j.StartTime = utcOrNil(h.Record.StartTime)
			j.Message, j.MessageHex = textOrHex([]byte(h.Record.Message))
		}
	}
	return json.NewEncoder(w).Encode(j)
}

func utcOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func textOrHex(b []byte) (*string, string) {
	if utf8.Valid(b) {
		s := string(b)
		return &s, ""
	}
	return nil, hex.EncodeToString(b)
}
