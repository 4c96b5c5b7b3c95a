package integration

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// A lock read through the mount and shown by nfslock status is described
// the same way, in text and in JSON; status adds only path, state and
// held-for. The message has a tab and a byte that is not UTF-8.
func TestStatusAgreesWithMount(t *testing.T) {
	const script = `exec 9>"$MNT/x"; printf 'a\tb \377' >&9
cat "$MNT/x"; echo "--"; "$NFSLOCK" status $JSON "$BACKING/x"; exec 9>&-`
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			d := startDaemon(t, "--format="+format)
			flag := ""
			if format == "json" {
				flag = "--json"
			}
			out, err := d.shell(t, "JSON="+flag+"; "+script)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			cat, status, ok := strings.Cut(out, "--\n")
			if !ok {
				t.Fatalf("output: %q", out)
			}
			if format == "json" {
				var fromCat, fromStatus map[string]any
				if err := json.Unmarshal([]byte(cat), &fromCat); err != nil {
					t.Fatalf("cat: %v: %q", err, cat)
				}
				if err := json.Unmarshal([]byte(status), &fromStatus); err != nil {
					t.Fatalf("status --json: %v: %q", err, status)
				}
				if fromStatus["path"] != d.backing+"/x" || fromCat["message_hex"] != "61096220ff" {
					t.Errorf("status --json path %v, cat's message_hex %v", fromStatus["path"], fromCat["message_hex"])
				}
				delete(fromStatus, "path")
				if !reflect.DeepEqual(fromCat, fromStatus) {
					t.Errorf("cat shows %v\nstatus --json %v", fromCat, fromStatus)
				}
				return
			}
			var kept []string
			for line := range strings.Lines(status) {
				switch name, _, _ := strings.Cut(line, ":"); name {
				case "path", "state", "held-for":
				default:
					kept = append(kept, line)
				}
			}
			if got := strings.Join(kept, ""); got != cat || !strings.Contains(cat, `message: a\tb \xff`+"\n") {
				t.Errorf("cat shows\n%s\nstatus, less path, state and held-for:\n%s", cat, got)
			}
		})
	}
}
