package lockview

import (
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nfslockfs/nfslockfs/nfslock"
)

var (
	started = time.Date(2026, 11, 27, 8, 0, 0, 123456000, time.UTC)
	since   = time.Date(2026, 11, 27, 9, 0, 3, 5000, time.FixedZone("CET", 3600))
)

func TestViews(t *testing.T) {
	for _, tc := range []struct {
		name       string
		holder     *nfslock.Holder
		text, json string
	}{
		{
			name: "alive",
			holder: &nfslock.Holder{State: nfslock.HolderAlive, Since: since,
				Record: nfslock.Record{Host: "node17", Pid: 4242, Message: "make -j8 && echo <done>", StartTime: started}},
			text: "host: node17\npid: 4242\nstarted: 2026-11-27T08:00:00.123456Z\nheld-since: 2026-11-27T08:00:03.000005Z\nmessage: make -j8 && echo <done>\n",
			json: `{"state":"alive","host":"node17","pid":4242,"start_time":"2026-11-27T08:00:00.123456Z","held_since":"2026-11-27T08:00:03.000005Z","message":"make -j8 && echo <done>"}`,
		},
		{
			name: "old Core record, empty message",
			holder: &nfslock.Holder{State: nfslock.HolderRemote, Since: since,
				Record: nfslock.Record{Host: "n1", Pid: 1}},
			text: "host: n1\npid: 1\nheld-since: 2026-11-27T08:00:03.000005Z\nmessage: \n",
			json: `{"state":"remote","host":"n1","pid":1,"held_since":"2026-11-27T08:00:03.000005Z","message":""}`,
		},
		{
			name: "message not UTF-8, over lines",
			holder: &nfslock.Holder{State: nfslock.HolderDead, Since: since,
				Record: nfslock.Record{Host: "node\t17", Pid: 7, Message: "say \"hi\" \\\n\xff"}},
			text: "host: node\\t17\npid: 7\nheld-since: 2026-11-27T08:00:03.000005Z\nmessage: say \"hi\" \\\\\\n\\xff\n",
			json: `{"state":"dead","host":"node\t17","pid":7,"held_since":"2026-11-27T08:00:03.000005Z","message_hex":"7361792022686922205c0aff"}`,
		},
		{
			name:   "corrupt",
			holder: &nfslock.Holder{State: nfslock.HolderCorrupt, Since: since, Raw: []byte("((host n\n")},
			text:   "held-since: 2026-11-27T08:00:03.000005Z\nraw: ((host n\\n\n",
			json:   `{"state":"corrupt","held_since":"2026-11-27T08:00:03.000005Z","raw":"((host n\n"}`,
		},
		{
			name:   "corrupt, not UTF-8",
			holder: &nfslock.Holder{State: nfslock.HolderCorrupt, Since: since, Raw: []byte{0xfe, '('}},
			text:   "held-since: 2026-11-27T08:00:03.000005Z\nraw: \\xfe(\n",
			json:   `{"state":"corrupt","held_since":"2026-11-27T08:00:03.000005Z","raw_hex":"fe28"}`,
		},
		{
			name: "lease",
			holder: &nfslock.Holder{State: nfslock.HolderRemote, Since: since,
				Record: nfslock.Record{Host: "n2", Pid: 9, Message: "m"},
				Lease:  &nfslock.Lease{Duration: 30 * time.Second, Renewed: started, Token: 42, HeldSince: since}},
			text: "host: n2\npid: 9\nheld-since: 2026-11-27T08:00:03.000005Z\nmessage: m\ntoken: 42\nlease: 30s\nrenewed: 2026-11-27T08:00:00.123456Z\n",
			json: `{"state":"remote","host":"n2","pid":9,"held_since":"2026-11-27T08:00:03.000005Z","message":"m","token":42,"lease_seconds":30,"renewed":"2026-11-27T08:00:00.123456Z"}`,
		},
		{
			name: "free",
			json: `{"state":"free"}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.holder != nil {
				if got := string(AppendText(nil, *tc.holder)); got != tc.text {
					t.Errorf("text:\n%s\nwant:\n%s", got, tc.text)
				}
			}
			if got := string(NewObject(tc.holder).AppendJSON(nil)); got != tc.json+"\n" {
				t.Errorf("JSON:\n%s\nwant:\n%s", got, tc.json)
			}
		})
	}
}

func TestPath(t *testing.T) {
	for path, want := range map[string]string{
		"/locks/nightly": `{"path":"/locks/nightly","state":"free"}`,
		"/locks/\xffx":   `{"path_hex":"2f6c6f636b732f` + hex.EncodeToString([]byte("\xffx")) + `","state":"free"}`,
	} {
		if got := string(NewObject(nil).WithPath(path).AppendJSON(nil)); got != want+"\n" {
			t.Errorf("path %q: %s, want %s", path, got, want)
		}
	}
}

// The JSON decodes to the holder's exact values, hex fields included.
func TestJSONRoundTrip(t *testing.T) {
	h := nfslock.Holder{State: nfslock.HolderAlive, Since: since,
		Record: nfslock.Record{Host: "h", Pid: 3, Message: "a\x00\xc3(", StartTime: started}}
	var o Object
	if err := json.Unmarshal(NewObject(&h).AppendJSON(nil), &o); err != nil {
		t.Fatal(err)
	}
	msg, err := hex.DecodeString(o.MessageHex)
	if err != nil || string(msg) != h.Record.Message || o.Message != nil {
		t.Errorf("message %q, hex %q: want %q in hex only", derefString(o.Message), o.MessageHex, h.Record.Message)
	}
	for name, got := range map[string]string{"start_time": o.StartTime, "held_since": o.HeldSince} {
		parsed, err := time.Parse(time.RFC3339Nano, got)
		want := map[string]time.Time{"start_time": started, "held_since": since}[name]
		if err != nil || !parsed.Equal(want) || !strings.HasSuffix(got, "Z") {
			t.Errorf("%s %q: want %v, RFC 3339 in UTC", name, got, want)
		}
	}
}

func derefString(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func TestServerTime(t *testing.T) {
	l := &nfslock.Lease{Duration: 30 * time.Second, Renewed: started}
	at := started.Add(10*time.Second + 250*time.Millisecond)
	if got, want := string(AppendServerTime(nil, l, at)), "renewed-ago: 10.25s\nexpires-in: 19.75s\n"; got != want {
		t.Errorf("text:\n%s\nwant:\n%s", got, want)
	}
	if got, want := string(NewObject(nil).WithServerTime(l, started.Add(31*time.Second)).AppendJSON(nil)),
		`{"state":"free","renewed_ago_seconds":31,"expires_in_seconds":-1}`+"\n"; got != want {
		t.Errorf("JSON: %s, want %s", got, want)
	}
}
