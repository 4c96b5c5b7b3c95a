//go:build linux

package nfslock

import (
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Record is the holder record stored in P.nfs_lock, as Core's Lock_file.Nfs
// writes it: ((host H) (pid N) (message M) (start_time (DATE TIME))).
type Record struct {
	Host    string
	Pid     int
	Message string
	// StartTime is when the holder process started (UTC, microsecond
	// precision on disk). The zero time means the record has none, as in
	// records written by Core versions before start_time existed.
	StartTime time.Time
}

// MaxRecordSize is the longest record ParseRecord accepts; longer input is
// corrupt. Encode escapes a byte of Host or Message into at most 4 bytes, so
// a record whose Host and Message total under 16000 bytes always fits.
const MaxRecordSize = 64 << 10

// MaxMessageLen is the longest message, in bytes, that this project's
// programs put in a record: the CLI refuses a longer --message, the mount a
// longer write (EFBIG), and both cut a command line used as the message. It keeps
// records small for every reader, Core's included. The library itself
// accepts any message whose record fits in MaxRecordSize.
const MaxMessageLen = 4 << 10

// CutMessage returns msg if it is at most MaxMessageLen bytes long, and
// otherwise msg cut to MaxMessageLen bytes with "..." marking the cut. It
// cuts before a UTF-8 character's first byte, so a command line of text
// stays text; bytes that are not UTF-8 are cut where the limit falls.
func CutMessage(msg string) string {
	if len(msg) <= MaxMessageLen {
		return msg
	}
	const mark = "..."
	cut := MaxMessageLen - len(mark)
	for i := cut; i > cut-utf8.UTFMax && i > 0; i-- {
		if utf8.RuneStart(msg[i]) {
			cut = i
			break
		}
	}
	return msg[:cut] + mark
}

// Encode returns the record in Core v2's machine layout (no optional spaces,
// no trailing newline), the layout Core's create_v2 writes, byte for byte:
// atoms quoted and escaped as Sexplib does, start_time in UTC with six
// fractional digits (truncated to the microsecond) and omitted when zero.
// ParseRecord reads the result back as r, given a positive Pid and a
// StartTime (if any) in the years 1 to 9999.
func (r Record) Encode() []byte {
	b := make([]byte, 0, 80+len(r.Host)+len(r.Message))
	b = appendSexpValue(append(b, "((host"...), r.Host)
	b = strconv.AppendInt(append(b, ")(pid "...), int64(r.Pid), 10)
	b = appendSexpValue(append(b, ")(message"...), r.Message)
	b = append(b, ')')
	if !r.StartTime.IsZero() {
		b = append(b, "(start_time("...)
		b = r.StartTime.UTC().AppendFormat(b, "2006-01-02 15:04:05.000000Z")
		b = append(b, ')', ')')
	}
	return append(b, ')')
}

// ParseRecord decodes a holder record in either of Core's layouts, with any
// whitespace between tokens. Fields must come in the order Core writes them
// (host, pid, message, then start_time if present; Core's reader would take
// any order), and no others; pid must be a
// positive decimal integer, as Core's Pid requires. start_time is read as
// Core's Time_float.Stable.With_utc_sexp.V2: (YYYY-MM-DD HH:MM:SS[.fff]ZONE)
// with ZONE "Z" or an offset like "+01:00", "+0100" or "+01"; it is returned
// in UTC, truncated to the microsecond. Comments are not supported. Errors
// match ErrCorrupt and say what is wrong; input longer than MaxRecordSize
// is rejected unread.
func ParseRecord(data []byte) (Record, error) {
	if len(data) > MaxRecordSize {
		return Record{}, corruptRecord("record is %d bytes, more than %d", len(data), MaxRecordSize)
	}
	top, err := readSexp(data)
	if err != nil {
		return Record{}, err
	}
	if !top.isList || len(top.list) < 3 || len(top.list) > len(recordFields) {
		return Record{}, corruptRecord("not a list of 3 or 4 fields (host, pid, message[, start_time])")
	}
	var r Record
	for i, field := range top.list {
		want := recordFields[i]
		if !field.isList || len(field.list) != 2 || field.list[0].isList {
			return Record{}, corruptRecord("field %d is not (%s VALUE)", i+1, want)
		}
		if name := field.list[0].atom; name != want {
			return Record{}, corruptRecord("field %d is %q, want %q", i+1, name, want)
		}
		value := field.list[1]
		if value.isList && want != "start_time" {
			return Record{}, corruptRecord("%s is a list, want an atom", want)
		}
		switch want {
		case "host":
			r.Host = value.atom
		case "pid":
			r.Pid, err = parsePid(value.atom)
		case "message":
			r.Message = value.atom
		case "start_time":
			r.StartTime, err = parseStartTime(value)
		}
		if err != nil {
			return Record{}, err
		}
	}
	return r, nil
}

var recordFields = [...]string{"host", "pid", "message", "start_time"}

func parsePid(s string) (int, error) {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, corruptRecord("pid %q is not a positive integer", s)
		}
	}
	pid, err := strconv.Atoi(s)
	if err != nil || pid <= 0 {
		return 0, corruptRecord("pid %q is not a positive integer", s)
	}
	return pid, nil
}

// startTimeLayouts read what Core's Time_float.of_string does with the date
// and time-of-day atoms joined by a space. Core writes "Z"; the offsets are
// for its other writers. A fraction after the seconds is optional (time.Parse).
var startTimeLayouts = [...]string{
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05Z0700",
	"2006-01-02 15:04:05Z07",
}

func parseStartTime(v sexpNode) (time.Time, error) {
	if len(v.list) != 2 || v.list[0].isList || v.list[1].isList {
		return time.Time{}, corruptRecord("start_time is not (DATE TIME)")
	}
	s := v.list[0].atom + " " + v.list[1].atom
	for _, layout := range startTimeLayouts {
		t, err := time.Parse(layout, s)
		if err != nil {
			continue
		}
		t = t.UTC().Truncate(time.Microsecond)
		if y := t.Year(); y < 1 || y > 9999 {
			return time.Time{}, corruptRecord("start_time %q is out of range", s)
		}
		return t, nil
	}
	return time.Time{}, corruptRecord("start_time %q is not YYYY-MM-DD HH:MM:SS.ffffffZ", s)
}

// corruptRecord returns an error matching ErrCorrupt that says what is wrong.
func corruptRecord(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrCorrupt)
}
