package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// replyTimeout bounds every wait for a worker's answer, so that a wedged
// tool fails the figure instead of hanging the run. The slowest peer's
// handoff is about 8 s.
const replyTimeout = 90 * time.Second

// A spec says how to start a worker process.
type spec struct {
	argv  []string
	env   []string // added to lockbench's environment
	clone uintptr  // extra clone flags (syscall.CLONE_NEWUTS for another "host")
}

// A proc is a running worker (see worker.go for its protocol).
type proc struct {
	argv   []string
	cmd    *exec.Cmd
	in     io.WriteCloser
	lines  chan string
	stderr *tailBuffer
}

func startProc(s spec) (*proc, error) {
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Env = append(os.Environ(), s.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: s.clone, Pdeathsig: syscall.SIGKILL}
	p := &proc{argv: s.argv, cmd: cmd, lines: make(chan string, 16), stderr: new(tailBuffer)}
	cmd.Stderr = p.stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p.in = in
	go func() { // ends when the worker's stdout closes
		defer close(p.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	return p, nil
}

// send gives the worker a command without waiting for its answer.
func (p *proc) send(command string) error {
	_, err := fmt.Fprintln(p.in, command)
	return err
}

// recv waits for the answer to the oldest command sent and returns its numbers.
func (p *proc) recv() ([]int64, error) {
	select {
	case line, ok := <-p.lines:
		if !ok {
			return nil, fmt.Errorf("%s exited: %v: %s", p.argv[0], p.cmd.Wait(), p.stderr)
		}
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "ok" {
			return nil, fmt.Errorf("%s: %s: %s", p.argv[0], line, p.stderr)
		}
		nums := make([]int64, len(f)-1)
		for i, s := range f[1:] {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%s: bad answer %q", p.argv[0], line)
			}
			nums[i] = n
		}
		return nums, nil
	case <-time.After(replyTimeout):
		p.cmd.Process.Kill()
		return nil, fmt.Errorf("%s: no answer within %v: %s", p.argv[0], replyTimeout, p.stderr)
	}
}

func (p *proc) call(command string) ([]int64, error) {
	if err := p.send(command); err != nil {
		return nil, err
	}
	return p.recv()
}

// stop ends the worker by closing its input, and kills it if it lingers.
func (p *proc) stop() {
	p.in.Close()
	t := time.AfterFunc(10*time.Second, func() { p.cmd.Process.Kill() })
	p.cmd.Wait()
	t.Stop()
}

// tailBuffer keeps the last few KiB written to it: a worker's stderr, for
// error messages.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(b)
	if over := t.buf.Len() - 4096; over > 0 {
		t.buf.Next(over)
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(t.buf.String())
}
