package lockview

import (
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/nfslockfs/nfslockfs/nfslock"
)

// Free is the state of a lock that nobody holds.
const Free = "free"

// State returns the word for h's state: the nfslock.HolderState's (alive,
// dead, remote, corrupt), or Free when h is nil.
func State(h *nfslock.Holder) string {
	if h == nil {
		return Free
	}
	return h.State.String()
}

// AppendText appends h as text lines: host, pid, started (if the record has
// a start time), held-since (if known) and message, or for a corrupt record
// held-since and raw; then, in a lease directory, token (if the holder has
// one), lease and renewed.
func AppendText(b []byte, h nfslock.Holder) []byte {
	b = appendRecordText(b, h)
	if l := h.Lease; l != nil {
		if l.Token > 0 {
			b = AppendLine(b, "token", strconv.FormatUint(l.Token, 10))
		}
		b = AppendLine(b, "lease", l.Duration.String())
		b = AppendLine(b, "renewed", timestamp(l.Renewed))
	}
	return b
}

// AppendServerTime appends, for a lease, how long ago it was renewed and
// when it expires by the server's clock, whose current time is serverNow.
func AppendServerTime(b []byte, l *nfslock.Lease, serverNow time.Time) []byte {
	ago, left := leaseTimes(l, serverNow)
	b = AppendLine(b, "renewed-ago", ago.Round(time.Millisecond).String())
	return AppendLine(b, "expires-in", left.Round(time.Millisecond).String())
}

// leaseTimes returns how long ago l was renewed and how long it has left
// (negative: expired), at the server's time serverNow.
func leaseTimes(l *nfslock.Lease, serverNow time.Time) (ago, left time.Duration) {
	ago = serverNow.Sub(l.Renewed)
	return ago, l.Duration - ago
}

func appendRecordText(b []byte, h nfslock.Holder) []byte {
	if h.State != nfslock.HolderCorrupt {
		b = AppendLine(b, "host", h.Record.Host)
		b = AppendLine(b, "pid", strconv.Itoa(h.Record.Pid))
		if !h.Record.StartTime.IsZero() {
			b = AppendLine(b, "started", timestamp(h.Record.StartTime))
		}
	}
	if !h.Since.IsZero() {
		b = AppendLine(b, "held-since", timestamp(h.Since))
	}
	if h.State == nfslock.HolderCorrupt {
		return AppendLine(b, "raw", string(h.Raw))
	}
	return AppendLine(b, "message", h.Record.Message)
}

// AppendLine appends the line "name: value", with value escaped as the
// package's text escapes values (see the package documentation).
func AppendLine(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = appendEscaped(b, value)
	return append(b, '\n')
}

func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = fmt.Appendf(b, `\x%02x`, s[i])
		case r == '\\':
			b = append(b, `\\`...)
		case strconv.IsPrint(r):
			b = append(b, s[i:i+size]...)
		default:
			q := strconv.QuoteRune(r) // 'x' with x escaped
			b = append(b, q[1:len(q)-1]...)
		}
		i += size
	}
	return b
}

// timeLayout is RFC 3339 with microseconds.
const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

func timestamp(t time.Time) string { return t.UTC().Format(timeLayout) }
