package hostsim

import (
	"os"
	"syscall"
)

// A host's init, and the two helpers that run a command inside a host, are
// the running binary started again with one of these markers as argv[0].
// The package's init function recognizes them and plays the role instead of
// running the program, before the program's own initialization (a test
// binary's flags, say), so every binary that imports hostsim can play them.
const (
	initArg0   = "hostsim-init"   // HOSTNAME [SHARED...]; fd 3: readiness pipe. See hostinit.go.
	enterArg0  = "hostsim-enter"  // INIT_PID NAME [ARG...]. See enter.go.
	insideArg0 = "hostsim-inside" // NAME [ARG...]. See enter.go.
)

func init() {
	if len(os.Args) < 2 {
		return
	}
	// syscall.Exit, not os.Exit: the roles have nothing to flush, and a
	// race-enabled binary would pause a second in os.Exit(0).
	switch os.Args[0] {
	case initArg0:
		syscall.Exit(runInit(os.Args[1], os.Args[2:]))
	case enterArg0:
		if len(os.Args) >= 3 {
			syscall.Exit(runEnter(os.Args[1], os.Args[2:]))
		}
	case insideArg0:
		syscall.Exit(runInside(os.Args[1:]))
	}
}
