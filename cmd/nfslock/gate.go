//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
)

// COMMAND must not run before the lock's record names it: were nfslock
// killed (SIGKILL) in between, COMMAND would run under a lock that names a
// dead process, which the next acquirer on this host removes as stale.
//
// So nfslock starts COMMAND behind a gate, before it waits for the lock: it
// runs its own executable with argv[0] gateArg0 and the read end of a pipe
// as file descriptor gateFD (and the lock's scope as scopeFD: see
// scope.go), takes the lock for that process (nfslock.WithOwner), and then
// writes one byte to the pipe, followed by the variables to add to
// COMMAND's environment (NUL-terminated), and closes it. The gate then
// execs COMMAND in its own place, keeping its pid and start time, so the
// record names COMMAND. If nfslock dies or gives up first, the gate reads
// end of file and exits without running COMMAND.

const (
	gateArg0 = "nfslock-gate"
	gateFD   = scopeFD + 1 // the second of exec.Cmd.ExtraFiles
)

// A gatedCommand is COMMAND's process, held at its gate until run.
type gatedCommand struct {
	*exec.Cmd
	gate *os.File // the pipe's write end: a byte opens the gate
}

// startGated starts the gate for COMMAND (argv, found at path), with the
// process attributes attr (see commandAttr); it inherits the scope s.
func startGated(path string, argv []string, attr *syscall.SysProcAttr, s *scope) (*gatedCommand, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	defer r.Close()
	cmd := &exec.Cmd{
		// /proc/self/exe rather than os.Executable: it still works if the
		// binary was replaced or removed since nfslock started.
		Path:        "/proc/self/exe",
		Args:        append([]string{gateArg0, path}, argv...),
		Stdin:       os.Stdin,
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
		ExtraFiles:  []*os.File{s.w, r},
		SysProcAttr: attr,
	}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	s.started()
	return &gatedCommand{Cmd: cmd, gate: w}, nil
}

// open lets COMMAND run, with env added to its environment. Should the
// gate have died meanwhile, the write fails and its end is reported as
// COMMAND's.
func (g *gatedCommand) open(env []string) {
	msg := []byte{1}
	for _, kv := range env {
		msg = append(append(msg, kv...), 0)
	}
	g.gate.Write(msg)
	g.gate.Close()
}

// cancel closes the gate without opening it: the gate sees end of file and
// exits, COMMAND never runs.
func (g *gatedCommand) cancel() {
	g.gate.Close()
	g.Wait()
}

// runGate is the gate's side: args are COMMAND's path and its argv. It
// returns only if COMMAND is not to run or cannot be executed.
func runGate(args []string) int {
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "nfslock: the gate is started by nfslock only")
		return exitUsage
	}
	gate := os.NewFile(gateFD, "gate")
	msg, err := io.ReadAll(gate)
	if err != nil || len(msg) == 0 || msg[0] != 1 {
		return 1 // nfslock died or gave up: COMMAND must not run
	}
	gate.Close()
	env := os.Environ()
	for _, kv := range bytes.Split(msg[1:], []byte{0}) {
		if len(kv) > 0 {
			env = append(env, string(kv))
		}
	}
	err = syscall.Exec(args[0], args[1:], env)
	fmt.Fprintf(os.Stderr, "nfslock: %s: cannot run: %v\n", args[1], err)
	return exitCannotRun
}
