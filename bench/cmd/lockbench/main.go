// Command lockbench measures nfslockfs side by side with the lock tools a
// cluster user would otherwise pick (docs/benchmarks.md, issue 6). bench/run.sh
// installs the peers, builds everything and runs it; by hand:
//
//	lockbench run -bin DIR -peers DIR -doc docs/benchmarks.md -chart FILE.dat [-gobench FILE]
//
// runs every figure, prints the results and rewrites lockbench's sections of
// the doc. The other subcommands are the processes it starts:
//
//	lockbench worker -tool NAME -lock PATH [-hostname H]   one lock user, driven over stdin
//	lockbench noop                                          exits at once: a Go program's start-up
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: lockbench run|worker|noop [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runMain(os.Args[2:])
	case "worker":
		err = workerMain(os.Args[2:])
	case "noop":
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lockbench:", err)
		os.Exit(1)
	}
}
