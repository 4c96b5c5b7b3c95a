//go:build linux

package nfslock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nfslockfs/nfslockfs/internal/testutil"
)

// staleRecord returns the record of a process of this host that has exited.
// Its start time is an hour ago, so it is stale even if the pid has been
// reused meanwhile.
func staleRecord(t *testing.T) Record {
	t.Helper()
	return Record{
		Host:      mustHostname(t),
		Pid:       deadPid(t),
		Message:   "stale",
		StartTime: time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond),
	}
}

// TestRacingCleaners plants a stale lock and releases many processes at one
// instant, each calling TryLock once, so that they all find the lock stale
// and clean it up together. Exactly one of them must end up holding it, and
// every other one must report it held by that one.
func TestRacingCleaners(t *testing.T) {
	const procs, rounds = 16, 20
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	for round := range rounds {
		if !t.Run(fmt.Sprintf("round%02d", round), func(t *testing.T) { racingCleanersRound(ctx, t, procs) }) {
			break
		}
	}
	t.Logf("%d rounds of %d processes: %v", rounds, procs, time.Since(start).Round(time.Millisecond))
}

func racingCleanersRound(ctx context.Context, t *testing.T, procs int) {
	dir := t.TempDir()
	p := filepath.Join(dir, "lock")
	stale := staleRecord(t)
	plant(t, p, stale)
	if err := os.WriteFile(p, stale.Encode(), 0o644); err != nil { // P, as Core v2 writes it
		t.Fatal(err)
	}

	gate, open := startGate(t)
	children := make([]*child, procs)
	for i := range children {
		children[i] = startChild(ctx, t, "trylock-once", []*os.File{gate}, p)
	}
	for _, c := range children {
		c.expect(t, "ready")
	}
	open.Close()

	var winners []int
	answers := make(map[int]string) // pid → what TryLock gave a loser
	for _, c := range children {
		line, err := c.readLine()
		if err != nil {
			t.Fatalf("%v\n%s", err, c.stderr.Bytes())
		}
		if line == "locked" {
			winners = append(winners, c.cmd.Process.Pid)
		} else {
			answers[c.cmd.Process.Pid] = line
		}
	}
	if len(winners) != 1 {
		t.Fatalf("%d processes hold the lock (%v), want 1; the others said %v", len(winners), winners, answers)
	}
	winner := Record{Host: stale.Host, Pid: winners[0]}
	want := fmt.Sprintf("held %d %s", winner.Pid, winner.Host)
	for pid, line := range answers {
		if line != want {
			t.Errorf("pid %d: TryLock said %q, want %q", pid, line, want)
		}
	}
	if rec, err := ReadRecord(p); err != nil || rec.Pid != winner.Pid || rec.Host != winner.Host {
		t.Errorf("the lock file holds %+v, %v; want the winner, pid %d", rec, err, winner.Pid)
	}
	lockData, _ := os.ReadFile(lockFile(p))
	if copyData, err := os.ReadFile(p); err != nil || string(copyData) != string(lockData) {
		t.Errorf("P holds %q, %v; want the record %q", copyData, err, lockData)
	}
	if got := testutil.Names(t, dir); !slices.Equal(got, []string{"lock", "lock.nfs_lock", "lock.nfs_readers"}) {
		t.Errorf("while held the directory holds %q, want P, P.nfs_lock and the exclusive mark only", got)
	}

	waitAll(t, children...) // the winner releases the lock as it exits
	if got := testutil.Names(t, dir); len(got) != 0 {
		t.Errorf("after the winner released the lock the directory holds %q", got)
	}
}

// tryLockOnceChild is the "trylock-once" role: args are the lock path.
// Released by the gate, it calls TryLock once and says "locked", or "held
// PID HOST" naming the holder, or "error: ..." for anything else. It keeps
// a lock it took until its stdin closes, and then releases it.
func tryLockOnceChild(args []string) error {
	p := args[0]
	if err := waitAtGate(); err != nil {
		return err
	}
	l, err := TryLock(p)
	var held *HeldError
	switch {
	case err == nil:
		fmt.Println("locked")
	case errors.Is(err, ErrLocked) && errors.As(err, &held) && held.Holder.State != HolderCorrupt:
		fmt.Printf("held %d %s\n", held.Holder.Record.Pid, held.Holder.Record.Host)
	default:
		fmt.Printf("error: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
	}
	if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
		return err
	}
	if l != nil {
		return l.Unlock()
	}
	return nil
}

// TestRacingCleanersInProcess has many goroutines call removeIfUnchanged at
// one instant with the same stale bytes; the one that removes the lock takes
// it again at once, as tryAcquire does. Exactly one may report the removal,
// and the new lock must survive the others: a slow cleaner must never remove
// a lock a fast one has cleaned and re-taken (Core's listed safety bug).
func TestRacingCleanersInProcess(t *testing.T) {
	const cleaners, rounds = 16, 50
	type result struct {
		removed bool
		err     error
		lock    *Lock
	}
	for round := range rounds {
		p := lockIn(t)
		stale := staleRecord(t)
		plant(t, p, stale)
		_, id, err := readLockBytes(p)
		if err != nil {
			t.Fatal(err)
		}
		raw := stale.Encode()

		start := make(chan struct{})
		results := make([]result, cleaners)
		var wg sync.WaitGroup
		for i := range results {
			wg.Go(func() {
				<-start
				r := &results[i]
				r.removed, r.err = removeIfUnchanged(p, id, raw, "cleaning up")
				if r.removed {
					r.lock, r.err = TryLock(p)
				}
			})
		}
		close(start)
		wg.Wait()

		var winner *Lock
		removals := 0
		for _, r := range results {
			if r.err != nil {
				t.Fatalf("round %d: %v", round, r.err)
			}
			if r.removed {
				removals++
				winner = r.lock
			}
		}
		if removals != 1 {
			t.Fatalf("round %d: %d cleaners removed the stale lock, want 1", round, removals)
		}
		// Unlock checks that P.nfs_lock is still the file the winner created.
		if err := winner.Unlock(); err != nil {
			t.Fatalf("round %d: the re-taken lock did not survive the other cleaners: %v", round, err)
		}
	}
}
