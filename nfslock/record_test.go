//go:build linux

package nfslock

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// coreRecords holds records as Core writes them (see its README.md).
const coreRecords = "testdata/core-records"

// fixtureRecords returns every fixture file by name, failing if they are missing.
func fixtureRecords(tb testing.TB) map[string][]byte {
	tb.Helper()
	names, err := filepath.Glob(filepath.Join(coreRecords, "*.sexp"))
	if err != nil || len(names) == 0 {
		tb.Fatalf("no Core record fixtures in %s: %v", coreRecords, err)
	}
	files := make(map[string][]byte)
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		files[filepath.Base(name)] = data
	}
	return files
}

// expectedRecords decodes expected.json: a record per fixture, or nil where
// the fixture is corrupt.
func expectedRecords(t *testing.T) map[string]*Record {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(coreRecords, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	want := make(map[string]*Record)
	for name, v := range raw {
		if string(v) == `"corrupt"` {
			want[name] = nil
			continue
		}
		var e struct {
			Host       string
			Pid        int
			Message    *string
			MessageHex *string    `json:"message_hex"`
			StartTime  *time.Time `json:"start_time"`
		}
		if err := json.Unmarshal(v, &e); err != nil {
			t.Fatalf("expected.json: %s: %v", name, err)
		}
		r := &Record{Host: e.Host, Pid: e.Pid}
		switch {
		case e.Message != nil:
			r.Message = *e.Message
		case e.MessageHex != nil:
			msg, err := hex.DecodeString(*e.MessageHex)
			if err != nil {
				t.Fatalf("expected.json: %s: %v", name, err)
			}
			r.Message = string(msg)
		default:
			t.Fatalf("expected.json: %s has no message", name)
		}
		if e.StartTime != nil {
			r.StartTime = e.StartTime.UTC()
		}
		want[name] = r
	}
	return want
}

func sameRecord(a, b Record) bool {
	return a.Host == b.Host && a.Pid == b.Pid && a.Message == b.Message && a.StartTime.Equal(b.StartTime)
}

func TestParseRecordCoreFixtures(t *testing.T) {
	want := expectedRecords(t)
	for name, data := range fixtureRecords(t) {
		t.Run(name, func(t *testing.T) {
			w, ok := want[name]
			if !ok {
				t.Fatalf("no entry in expected.json")
			}
			got, err := ParseRecord(data)
			if w == nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("ParseRecord = %+v, %v; want an error matching ErrCorrupt", got, err)
				}
				return
			}
			if err != nil || !sameRecord(got, *w) {
				t.Fatalf("ParseRecord = %+v, %v; want %+v", got, err, *w)
			}
		})
	}
}

// TestRecordEncodeCoreBytes checks that our records are byte for byte what Core
// writes for the same values, so Core's reader sees its own layout.
func TestRecordEncodeCoreBytes(t *testing.T) {
	files := fixtureRecords(t)
	for name, data := range map[string][]byte{
		"v2-machine.sexp":               files["v2-machine.sexp"],
		"v2-machine-no-start-time.sexp": files["v2-machine-no-start-time.sexp"],
		// The fixture spells "A" as \x41, which Sexplib's printer never
		// does; everything else is as Core writes it.
		"v2-machine-escapes.sexp": []byte(strings.Replace(string(files["v2-machine-escapes.sexp"]), `\x41`, "A", 1)),
	} {
		r, err := ParseRecord(files[name])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := r.Encode(); string(got) != string(data) {
			t.Errorf("%s: Encode =\n%s\nwant\n%s", name, got, data)
		}
		if back, err := ParseRecord(r.Encode()); err != nil || !sameRecord(back, r) {
			t.Errorf("%s: re-read %+v, %v; want %+v", name, back, err, r)
		}
	}
}

func TestRecordEncode(t *testing.T) {
	start := time.Date(2026, 11, 27, 9, 0, 0, 123456789, time.FixedZone("CET", 3600))
	for _, tc := range []struct {
		r    Record
		want string
	}{
		{Record{Host: "h", Pid: 1, StartTime: start},
			`((host h)(pid 1)(message"")(start_time(2026-11-27 08:00:00.123456Z)))`},
		{Record{Host: "h", Pid: 1, Message: "a\nb\tc\rd\be\x00\x7f\xff"},
			`((host h)(pid 1)(message"a\nb\tc\rd\be\000\127\255"))`},
		{Record{Host: "two words", Pid: 1, Message: `(x);"y"\z`},
			`((host"two words")(pid 1)(message"(x);\"y\"\\z"))`},
		// Sexplib quotes what would open or close a block comment, nothing else.
		{Record{Host: "a#|b", Pid: 1, Message: "|#"},
			`((host"a#|b")(pid 1)(message"|#"))`},
		{Record{Host: "#a|", Pid: 1, Message: "|a#'~"},
			`((host #a|)(pid 1)(message |a#'~))`},
	} {
		if got := string(tc.r.Encode()); got != tc.want {
			t.Errorf("Encode(%+v) =\n%s\nwant\n%s", tc.r, got, tc.want)
		}
	}
}

func TestParseRecordLayouts(t *testing.T) {
	utc := func(ns int) time.Time { return time.Date(2026, 11, 27, 8, 0, 0, ns, time.UTC) }
	for _, tc := range []struct {
		in   string
		want Record
	}{
		{"\r\n\t( (host\ta)\f(pid\r\n7) (message \"x\\\r\n  y\") )\r\n",
			Record{Host: "a", Pid: 7, Message: "xy"}},
		{`((host a)(pid 7)(message"\ \'\q\x4g\1\\"))`,
			Record{Host: "a", Pid: 7, Message: ` '\q\x4g\1\`}},
		{`((host "")(pid 0007)(message m)(start_time ("2026-11-27" "08:00:00Z")))`,
			Record{Host: "", Pid: 7, Message: "m", StartTime: utc(0)}},
		{`((host a)(pid 7)(message m)(start_time (2026-11-27 09:30:00.5+01:30)))`,
			Record{Host: "a", Pid: 7, Message: "m", StartTime: utc(5e8)}},
		{`((host a)(pid 7)(message m)(start_time (2026-11-27 03:00:00.1234569-0500)))`,
			Record{Host: "a", Pid: 7, Message: "m", StartTime: utc(123456000)}},
		{`((host a)(pid 7)(message m)(start_time (2026-11-27 07:00:00.000001-01)))`,
			Record{Host: "a", Pid: 7, Message: "m", StartTime: utc(1000)}},
	} {
		got, err := ParseRecord([]byte(tc.in))
		if err != nil || !sameRecord(got, tc.want) {
			t.Errorf("ParseRecord(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseRecordCorrupt(t *testing.T) {
	const ok = `((host a)(pid 7)(message m)(start_time(2026-11-27 08:00:00.123456Z)))`
	if _, err := ParseRecord([]byte(ok)); err != nil {
		t.Fatalf("baseline: %v", err)
	}
	for _, in := range []string{
		``, ` `, `(`, `)`, `()`, `a`, `"a"`, `((host a)(pid 7)(message m)`,
		`((host a)(pid 7)(message m))x`, `((host a)(pid 7)(message m))()`,
		`((host a)(pid 7))`, `((pid 7)(host a)(message m))`,
		`((host a)(pid 7)(message m)(user u))`,
		`((host a)(pid 7)(message m)(start_time(2026-11-27 08:00:00Z))(x y))`,
		`((host a)(pid 7)(message m)(message m))`,
		`((host a b)(pid 7)(message m))`, `((host)(pid 7)(message m))`, `((host (a))(pid 7)(message m))`,
		`(((host) a)(pid 7)(message m))`, `((host a)(pid (7))(message m))`,
		`((host a)(pid 0)(message m))`, `((host a)(pid -7)(message m))`, `((host a)(pid +7)(message m))`,
		`((host a)(pid 0x7)(message m))`, `((host a)(pid 1_000)(message m))`,
		`((host a)(pid 99999999999999999999)(message m))`, `((host a)(pid "")(message m))`,
		`((host a)(pid 7)(message"m))`, `((host a)(pid 7)(message"m\"))`, `((host a)(pid 7)(message"\256"))`,
		`((host a)(pid 7)(message m;c))`, `((host a)(pid 7)(message a#|b|#))`, `((host a)(pid 7)(message |#))`,
		`((host a)(pid 7)(message m)(start_time 2026-11-27))`,
		`((host a)(pid 7)(message m)(start_time "2026-11-27 08:00:00Z"))`,
		`((host a)(pid 7)(message m)(start_time(2026-11-27)))`,
		`((host a)(pid 7)(message m)(start_time(2026-11-27 08:00:00Z UTC)))`,
		`((host a)(pid 7)(message m)(start_time(2026-11-27 08:00:00)))`,
		`((host a)(pid 7)(message m)(start_time(2026-02-30 08:00:00Z)))`,
		`((host a)(pid 7)(message m)(start_time(2026-11-27 24:00:00Z)))`,
		`((host a)(pid 7)(message m)(start_time(2026-11-27T08:00:00Z)))`,
		`((host a)(pid 7)(message m)(start_time(0000-01-01 00:00:00+01:00)))`,
		`((host a)(pid 7)(message m)(start_time(9999-12-31 23:59:59-01:00)))`,
		`((host a)(pid 7)(message m)(start_time((2026-11-27) 08:00:00Z)))`,
		"((host a)(pid 7)(message \"" + strings.Repeat("x", MaxRecordSize) + "\"))",
	} {
		if r, err := ParseRecord([]byte(in)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("ParseRecord(%.80q) = %+v, %v; want an error matching ErrCorrupt", in, r, err)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	bytesOf := func(max int) string {
		b := make([]byte, rng.Intn(max+1))
		for i := range b {
			if rng.Intn(2) == 0 {
				b[i] = byte(rng.Intn(256))
			} else {
				b[i] = " \n\t\\\"()#|;x"[rng.Intn(11)]
			}
		}
		return string(b)
	}
	for i := 0; i < 5000; i++ {
		r := Record{Host: bytesOf(20), Pid: 1 + rng.Intn(1<<31), Message: bytesOf(200)}
		if rng.Intn(4) != 0 {
			// Any instant in years 1 to 9999, in some zone: Encode writes UTC.
			sec := rng.Int63n(315537897600) - 62135596800
			zone := time.FixedZone("", 60*(rng.Intn(24*60)-12*60))
			r.StartTime = time.Unix(sec, rng.Int63n(1e9)).In(zone)
		}
		got, err := ParseRecord(r.Encode())
		want := r
		want.StartTime = r.StartTime.Truncate(time.Microsecond)
		if err != nil || !sameRecord(got, want) {
			t.Fatalf("ParseRecord(%q) = %+v, %v; want %+v", r.Encode(), got, err, want)
		}
	}
}

// FuzzParseRecord checks that ParseRecord never panics, and that whatever it
// accepts survives Encode and ParseRecord unchanged.
func FuzzParseRecord(f *testing.F) {
	for _, data := range fixtureRecords(f) {
		f.Add(data)
	}
	f.Add([]byte("( (host\t\"a b\")\r\n(pid 7)(message\"x\\\r\n  \\ \\q\\x4f\\200\")(start_time(2026-11-27 09:30:00.5+01:30)))"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRecord(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not match ErrCorrupt", err)
			}
			return
		}
		enc := r.Encode()
		if len(enc) > MaxRecordSize {
			return // escaping grew it past what a reader accepts
		}
		back, err := ParseRecord(enc)
		if err != nil || !sameRecord(back, r) {
			t.Fatalf("ParseRecord(%q) = %+v\nre-encoded %q\nre-read %+v, %v", data, r, enc, back, err)
		}
		if string(back.Encode()) != string(enc) {
			t.Fatalf("Encode is not stable: %q then %q", enc, back.Encode())
		}
	})
}

// TestCutMessage: a message over MaxMessageLen is cut to it with a visible
// mark, never inside a UTF-8 character, whatever characters meet the limit.
func TestCutMessage(t *testing.T) {
	if got := CutMessage("short"); got != "short" {
		t.Errorf("CutMessage(short) = %q", got)
	}
	exact := strings.Repeat("x", MaxMessageLen)
	if got := CutMessage(exact); got != exact {
		t.Error("a message of exactly MaxMessageLen bytes was cut")
	}
	for _, char := range []string{"x", "é", "€", "😀"} {
		for pad := range 4 {
			msg := strings.Repeat("a", pad) + strings.Repeat(char, MaxMessageLen+1)
			got := CutMessage(msg)
			if len(got) > MaxMessageLen || !utf8.ValidString(got) || !strings.HasSuffix(got, "...") ||
				!strings.HasPrefix(msg, strings.TrimSuffix(got, "...")) || len(got) < MaxMessageLen-utf8.UTFMax {
				t.Errorf("%q after %d bytes: cut to %d bytes, ending %q", char, pad, len(got), got[max(0, len(got)-8):])
			}
		}
	}
	binary := strings.Repeat("\xff", MaxMessageLen+10)
	if got := CutMessage(binary); len(got) != MaxMessageLen || got[:10] != binary[:10] {
		t.Errorf("bytes that are not UTF-8: cut to %d bytes", len(got))
	}
}
