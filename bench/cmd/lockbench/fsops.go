package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Figure 4: filesystem operations per uncontended acquire+release, counted
// from an strace of the tool's process tree: the system calls that name a
// file in the lock's directory (by path, or by a descriptor strace -y
// resolves), between the worker's marks around "cycles N".

// straceArgs traces file and descriptor calls of a process tree, with
// descriptors shown as paths. --seccomp-bpf stops the tracee only for
// those calls, so untraced calls keep their speed.
var straceArgs = []string{"strace", "-f", "--seccomp-bpf", "-qq", "-y", "-e", "trace=%file,%desc"}

// localOnly are calls that name a file but never reach a file server:
// descriptor bookkeeping, and the exec of a command whose arguments name
// the lock.
var localOnly = map[string]bool{"epoll_ctl": true, "lseek": true, "ioctl": true, "fadvise64": true,
	"execve": true, "execveat": true, "dup": true, "dup2": true, "dup3": true}

// An opCount is the operations of one acquire+release, by system call.
type opCount map[string]float64

func (c opCount) total() float64 {
	var n float64
	for _, v := range c {
		n += v
	}
	return n
}

func (c opCount) String() string {
	var parts []string
	for _, name := range sortedKeys(c) {
		parts = append(parts, fmt.Sprintf("%s %s", name, trimFloat(c[name])))
	}
	return strings.Join(parts, ", ")
}

// syscallsPerCycle counts t's lock-directory calls over n cycles, and for the
// mount also those of the daemon d on its backing directory.
func syscallsPerCycle(t *tool, n int, d *daemon) (client, backing opCount, err error) {
	dir, err := t.lockDir("syscalls")
	if err != nil {
		return nil, nil, err
	}
	trace, err := t.notesFile("syscalls.strace")
	if err != nil {
		return nil, nil, err
	}
	s := t.spec(filepath.Join(dir, "L"))
	s.argv = append(append(append([]string{}, straceArgs...), "-o", trace), s.argv...)
	p, err := startProc(s)
	if err != nil {
		return nil, nil, err
	}
	defer p.stop()
	if _, err := p.call("cycles 3"); err != nil { // once-per-process work
		return nil, nil, err
	}
	var daemonTrace *tracer
	if d != nil {
		if daemonTrace, err = attachStrace(d.pid, filepath.Join(t.notes, "daemon.strace")); err != nil {
			return nil, nil, err
		}
	}
	if _, err := p.call(fmt.Sprintf("cycles %d", n)); err != nil {
		return nil, nil, err
	}
	p.stop()
	if daemonTrace != nil {
		time.Sleep(100 * time.Millisecond) // RELEASE follows close asynchronously
		daemonTrace.stop()
		if backing, err = countCalls(daemonTrace.file, d.backingOf(dir), "", n); err != nil {
			return nil, nil, err
		}
	}
	client, err = countCalls(trace, dir, fmt.Sprintf("cycles_%d", n), n)
	return client, backing, err
}

// countCalls counts the calls in an strace -f -y output that name dir,
// divided by n. With a mark, only the calls between each markPrefix+mark
// and the next markPrefix+mark+"-done" count.
func countCalls(trace, dir, mark string, n int) (opCount, error) {
	f, err := os.Open(trace)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	counts := opCount{}
	inside := mark == ""
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case mark != "" && strings.Contains(line, `"`+markPrefix+mark+`"`):
			inside = true
		case mark != "" && strings.Contains(line, `"`+markPrefix+mark+`-done"`):
			inside = false
		case inside && strings.Contains(line, dir):
			if name := callName(line); name != "" && !localOnly[name] &&
				(name != "fcntl" || strings.Contains(line, "LK")) {
				counts[name] += 1 / float64(n)
			}
		}
	}
	return counts, sc.Err()
}

// callName returns the system call of an strace -f line ("PID name(args...")
// and "" for the second half of a call strace split in two.
func callName(line string) string {
	_, rest, _ := strings.Cut(line, " ")
	rest = strings.TrimLeft(rest, " ")
	if strings.HasPrefix(rest, "<...") {
		return ""
	}
	name, _, ok := strings.Cut(rest, "(")
	if !ok {
		return ""
	}
	return name
}

// A tracer is an strace attached to a running process.
type tracer struct {
	cmd  *exec.Cmd
	file string
}

func attachStrace(pid int, file string) (*tracer, error) {
	args := []string{"-f", "-qq", "-y", "-e", "trace=%file,%desc", "-o", file, "-p", fmt.Sprint(pid)}
	cmd := exec.Command("strace", args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	// strace attaches to the threads one by one; wait until the main
	// thread is traced, then a little longer for the others.
	for deadline := time.Now().Add(5 * time.Second); procStatus(pid, "TracerPid:") == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			return nil, fmt.Errorf("strace did not attach to %d", pid)
		}
	}
	time.Sleep(300 * time.Millisecond)
	return &tracer{cmd: cmd, file: file}, nil
}

func (t *tracer) stop() {
	t.cmd.Process.Signal(syscall.SIGINT)
	t.cmd.Wait()
}
