package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// A worker is one user of one lock, driven by lockbench run over a line
// protocol on stdin and stdout. bench/peers/*.py and *.pl speak it too, so
// that every tool is measured by the same orchestration:
//
//	lock              → ok ACQUIRED STARTED  (monotonic ns: after acquiring, before trying)
//	unlock            → ok RELEASING         (monotonic ns, just before releasing)
//	cycles N          → ok ELAPSED           (N uncontended acquire+release cycles)
//	loop MS LOG ID    → ok CYCLES ELAPSED    (contend for MS ms; log "ID +" and "ID -" around each hold)
//
// A failure answers "err TEXT". Times are CLOCK_MONOTONIC, comparable
// across the processes of one machine. Around each command the worker stats
// markPrefix+WORDS and markPrefix+WORDS+"-done" (WORDS: the command's words
// joined by "_"), which do not exist: the marks let an strace of the worker
// be cut into commands.
const markPrefix = "/.lockbench-mark/"

// A locker takes and releases one lock, as one tool does it.
type locker interface {
	lock() error
	unlock() error
}

func workerMain(args []string) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	tool := fs.String("tool", "", "how to lock (see lockers)")
	path := fs.String("lock", "", "lock path")
	hostname := fs.String("hostname", "", "set this hostname first (the worker must be in its own UTS namespace)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *hostname != "" {
		if err := syscall.Sethostname([]byte(*hostname)); err != nil {
			return fmt.Errorf("sethostname: %w", err)
		}
	}
	l, err := newLocker(*tool, *path)
	if err != nil {
		return err
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		mark(strings.Join(f, "_"))
		reply, err := serve(l, f)
		mark(strings.Join(f, "_") + "-done")
		if err != nil {
			reply = "err " + strings.ReplaceAll(err.Error(), "\n", " ")
		}
		fmt.Println(reply)
	}
	return in.Err()
}

func serve(l locker, f []string) (string, error) {
	switch {
	case f[0] == "lock" && len(f) == 1:
		start := now()
		if err := l.lock(); err != nil {
			return "", err
		}
		return fmt.Sprintf("ok %d %d", now(), start), nil
	case f[0] == "unlock" && len(f) == 1:
		t := now()
		return fmt.Sprintf("ok %d", t), l.unlock()
	case f[0] == "cycles" && len(f) == 2:
		n, err := strconv.Atoi(f[1])
		if err != nil {
			return "", err
		}
		start := now()
		for range n {
			if err := l.lock(); err != nil {
				return "", err
			}
			if err := l.unlock(); err != nil {
				return "", err
			}
		}
		return fmt.Sprintf("ok %d", now()-start), nil
	case f[0] == "loop" && len(f) == 4:
		ms, err := strconv.Atoi(f[1])
		if err != nil {
			return "", err
		}
		n, elapsed, err := contendLoop(l, int64(ms)*1e6, f[2], f[3])
		return fmt.Sprintf("ok %d %d", n, elapsed), err
	}
	return "", fmt.Errorf("bad command %q", strings.Join(f, " "))
}

// contendLoop takes and releases the lock until d ns have passed, appending
// "id +" after each acquire and "id -" before each release to the log, with
// O_APPEND writes that land whole and in order (see checkLog).
func contendLoop(l locker, d int64, log, id string) (cycles int, elapsed int64, err error) {
	f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	in, out := []byte(id+" +\n"), []byte(id+" -\n")
	start := now()
	for now()-start < d {
		if err := l.lock(); err != nil {
			return cycles, 0, err
		}
		if _, err := f.Write(in); err != nil {
			return cycles, 0, err
		}
		if _, err := f.Write(out); err != nil {
			return cycles, 0, err
		}
		if err := l.unlock(); err != nil {
			return cycles, 0, err
		}
		cycles++
	}
	return cycles, now() - start, nil
}

// now reads CLOCK_MONOTONIC in nanoseconds.
func now() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

func mark(name string) {
	var st unix.Stat_t
	unix.Stat(markPrefix+name, &st)
}
