package lockview

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/nfslockfs/nfslockfs/nfslock"
)

// Object is the JSON form of a lock. Fields that do not apply are left out:
// the record's fields for a corrupt record or a free lock, raw unless the
// record is corrupt. A field and its _hex twin are never both present.
type Object struct {
	Path       *string  `json:"path,omitempty"`
	PathHex    string   `json:"path_hex,omitempty"`
	State      string   `json:"state"`
	Host       string   `json:"host,omitempty"`
	Pid        int      `json:"pid,omitempty"`
	StartTime  string   `json:"start_time,omitempty"`
	HeldSince  string   `json:"held_since,omitempty"`
	Message    *string  `json:"message,omitempty"`
	MessageHex string   `json:"message_hex,omitempty"`
	Raw        *string  `json:"raw,omitempty"`
	RawHex     string   `json:"raw_hex,omitempty"`
	Token      uint64   `json:"token,omitempty"`
	Lease      float64  `json:"lease_seconds,omitempty"`
	Renewed    string   `json:"renewed,omitempty"`
	RenewedAgo *float64 `json:"renewed_ago_seconds,omitempty"`
	ExpiresIn  *float64 `json:"expires_in_seconds,omitempty"`
}

// NewObject returns the JSON form of the lock h holds; a nil h is a free
// lock.
func NewObject(h *nfslock.Holder) Object {
	o := Object{State: State(h)}
	if h == nil {
		return o
	}
	if !h.Since.IsZero() {
		o.HeldSince = timestamp(h.Since)
	}
	if l := h.Lease; l != nil {
		o.Token, o.Lease, o.Renewed = l.Token, l.Duration.Seconds(), timestamp(l.Renewed)
	}
	if h.State == nfslock.HolderCorrupt {
		o.Raw, o.RawHex = textOrHex(string(h.Raw))
		return o
	}
	o.Host, o.Pid = h.Record.Host, h.Record.Pid
	if !h.Record.StartTime.IsZero() {
		o.StartTime = timestamp(h.Record.StartTime)
	}
	o.Message, o.MessageHex = textOrHex(h.Record.Message)
	return o
}

// WithServerTime returns o with the lease l's renewed_ago_seconds and
// expires_in_seconds at the server's time serverNow.
func (o Object) WithServerTime(l *nfslock.Lease, serverNow time.Time) Object {
	ago, left := leaseTimes(l, serverNow)
	agoSecs, leftSecs := ago.Seconds(), left.Seconds()
	o.RenewedAgo, o.ExpiresIn = &agoSecs, &leftSecs
	return o
}

// WithPath returns o naming the lock's path as well: as path, or as
// path_hex when it is not valid UTF-8.
func (o Object) WithPath(path string) Object {
	o.Path, o.PathHex = textOrHex(path)
	return o
}

// AppendJSON appends o as one line of JSON. Characters that HTML treats
// specially (&, <, >) are left as they are: messages are often shell
// commands.
func (o Object) AppendJSON(b []byte) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(o) // cannot fail: strings and an int, all valid UTF-8
	return append(b, buf.Bytes()...)
}

// textOrHex returns s as text if it is valid UTF-8, else in hex.
func textOrHex(s string) (*string, string) {
	if utf8.ValidString(s) {
		return &s, ""
	}
	return nil, hex.EncodeToString([]byte(s))
}
