//go:build linux

// Command nfslock is flock(1) for NFS: it holds a lock that every host
// sharing the filesystem respects while a command runs, and inspects,
// unlocks and breaks such locks. The locks are Jane Street Core's
// Lock_file.Nfs lock files (package nfslock).
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/nfslockfs/nfslockfs/nfslock"
)

// Exit statuses of nfslock's own (see usage for the whole list).
const (
	exitUsage = 2 // a command line nfslock cannot make sense of
	// exitLockFailed: the lock could not be taken for a reason other than
	// a conflict (permission, missing directory, name too long, I/O
	// error): flock(1)'s EX_NOINPUT for a lock file it cannot open.
	exitLockFailed = 66
	// exitLost: the lock's lease was lost while COMMAND ran, which was
	// stopped (sysexits' EX_TEMPFAIL: try again).
	exitLost      = 75
	exitCannotRun = 126 // COMMAND exists but cannot be executed, as in sh
	exitNotFound  = 127 // COMMAND not found, as in sh
)

func main() {
	switch os.Args[0] {
	case gateArg0:
		os.Exit(runGate(os.Args[1:]))
	case keeperArg0:
		os.Exit(runKeeper(os.Args[1:]))
	}
	code := run(os.Args[1:])
	if err := nfslock.UnlockAll(); err != nil {
		printError(err)
	}
	os.Exit(code)
}

// run carries out the command line and returns the exit status.
func run(args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "status":
			return statusMain(args[1:])
		case "unlock":
			return unlockMain(args[1:])
		case "break":
			return breakMain(args[1:])
		}
	}
	return lockMain(args)
}

// printError reports err on stderr as "nfslock: ...". The library's errors
// already start with that prefix; it is not repeated.
func printError(err error) {
	fmt.Fprintln(os.Stderr, "nfslock: "+strings.TrimPrefix(err.Error(), "nfslock: "))
}
