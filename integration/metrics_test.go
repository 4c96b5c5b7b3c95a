package integration

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMetricsDuringContention runs workers that take and release one lock
// through the mount, in turn, while /metrics is scraped; the counters must
// count exactly the cycles the workers made, the gauges must never show
// two holders, and a stale lock cleaned, a lock broken from outside and a
// lease lost must each be counted once.
func TestMetricsDuringContention(t *testing.T) {
	d := startDaemon(t, "--metrics-listen", "127.0.0.1:0")
	url := metricsURL(t, d)
	writeStaleRecord(t, d.backing, "contended")

	const workers, cycles = 3, 15
	script := fmt.Sprintf(`for i in $(seq %d); do exec 9>"$MNT/contended"; sleep 0.02; exec 9>&-; done`, cycles)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			if out, err := d.shell(t, script); err != nil {
				errs <- fmt.Errorf("worker: %v: %s", err, out)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	var maxWaiters, scrapes float64
	last := map[string]float64{}
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-time.After(10 * time.Millisecond):
		}
		m := scrape(t, url)
		scrapes++
		if held := m["nfslockfs_locks_held"]; held > 1 || held < 0 {
			t.Fatalf("nfslockfs_locks_held = %v during the run; one lock has at most one holder", held)
		}
		maxWaiters = max(maxWaiters, m["nfslockfs_waiters"])
		for _, c := range []string{`nfslockfs_acquires_total{result="acquired"}`, `nfslockfs_releases_total{result="released"}`, "nfslockfs_hold_seconds_count"} {
			if m[c] < last[c] {
				t.Fatalf("counter %s went down from %v to %v", c, last[c], m[c])
			}
			last[c] = m[c]
		}
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if maxWaiters < 1 {
		t.Errorf("nfslockfs_waiters never showed a waiter in %v scrapes while %d workers contended", scrapes, workers)
	}

	// A lock broken from outside while the mount holds it.
	if out, err := d.shell(t, `exec 9>"$MNT/broken" && "$NFSLOCK" break --force "$BACKING/broken" >/dev/null && exec 9>&-`); err != nil {
		t.Fatalf("breaking a lock held through the mount: %v: %s", err, out)
	}

	// A lease lost while the mount holds the lock: in a lease directory,
	// the lock is broken from outside; the holder's renewal finds it gone.
	leased := filepath.Join(d.backing, "leased")
	if err := os.Mkdir(leased, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(leased, ".nfslock-lease"), []byte("1s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	letGo := filepath.Join(t.TempDir(), "let-go")
	_, lines := d.background(t, fmt.Sprintf(`exec 9>"$MNT/leased/job" && echo held && until [ -e %q ]; do sleep 0.01; done; exec 9>&-; echo closed`, letGo))
	expectLine(t, lines, "held")
	if out, err := d.shell(t, `"$NFSLOCK" break --force "$BACKING/leased/job"`); err != nil {
		t.Fatalf("breaking a leased lock held through the mount: %v: %s", err, out)
	}
	waitFor(t, "the daemon finds the lease lost", func() bool { return strings.Contains(d.stderr.String(), "lock lost") })
	if err := os.WriteFile(letGo, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	expectLine(t, lines, "closed")

	// Releases are asynchronous: wait until the mount holds nothing.
	const total = workers*cycles + 2
	var m map[string]float64
	waitFor(t, "the mount has released every lock", func() bool {
		m = scrape(t, url)
		return m[`nfslockfs_releases_total{result="released"}`]+m[`nfslockfs_releases_total{result="broken"}`]+m[`nfslockfs_releases_total{result="lost"}`] == total
	})
	for series, want := range map[string]float64{
		`nfslockfs_acquires_total{result="acquired"}`: total,
		`nfslockfs_acquires_total{result="busy"}`:     0,
		`nfslockfs_acquires_total{result="error"}`:    0,
		`nfslockfs_releases_total{result="released"}`: total - 2,
		`nfslockfs_releases_total{result="broken"}`:   1,
		`nfslockfs_releases_total{result="lost"}`:     1,
		`nfslockfs_breaks_total`:                      1,
		`nfslockfs_lost_leases_total`:                 1,
		`nfslockfs_acquire_wait_seconds_count`:        total,
		`nfslockfs_hold_seconds_count`:                total,
		`nfslockfs_stale_cleanups_total`:              1,
		`nfslockfs_locks_held`:                        0,
		`nfslockfs_waiters`:                           0,
	} {
		if got := m[series]; got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	// Each worker held the lock 20 ms a cycle: the hold time adds up to at
	// least that.
	if sum := m["nfslockfs_hold_seconds_sum"]; sum < workers*cycles*0.02 {
		t.Errorf("nfslockfs_hold_seconds_sum = %v, want at least %v", sum, workers*cycles*0.02)
	}
	for series := range m {
		if strings.HasPrefix(series, "nfslockfs_backing_errors_total") {
			t.Errorf("%s = %v, want no backing-store errors", series, m[series])
		}
	}
	if !hasSeries(m, `nfslockfs_build_info{goversion="go`) {
		t.Error("no nfslockfs_build_info naming the build")
	}
	t.Logf("%d acquisitions counted; %v scrapes during the run saw up to %v waiters", total, scrapes, maxWaiters)
}

// metricsURL returns the /metrics address the daemon logged when it began
// to listen (it was given port 0).
func metricsURL(t *testing.T, d *daemon) string {
	t.Helper()
	m := regexp.MustCompile(`msg="serving metrics at /metrics" address="?([0-9.:]+)`).FindStringSubmatch(d.stderr.String())
	if m == nil {
		t.Fatalf("nfslockfs did not log its metrics address:\n%s", d.stderr)
	}
	return "http://" + m[1] + "/metrics"
}

// scrape fetches url and returns each sample of the text exposition
// format by its series ("name{labels}", as exposed).
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	samples := map[string]float64{}
	s := bufio.NewScanner(resp.Body)
	for s.Scan() {
		line := s.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return samples
}

func hasSeries(m map[string]float64, prefix string) bool {
	for series := range m {
		if strings.HasPrefix(series, prefix) {
			return true
		}
	}
	return false
}
