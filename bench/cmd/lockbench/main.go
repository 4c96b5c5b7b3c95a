// Command lockbench measures nfslockfs side by side with the lock tools a
// cluster user would otherwise pick. It measures and prints; what the
// figures mean is written in docs/benchmarks.md. bench/run.sh (make bench)
// installs the peers, builds everything and runs:
//
//	lockbench run -bin DIR -peers DIR [-quick] [-only REGEXP] [-skip PART,...] > RESULTS
//	lockbench report -doc docs/benchmarks.md -chart FILE.dat RESULTS GOBENCH...
//
// run writes its results in the Go benchmark format (one line per sample,
// "Benchmark<Figure>/tool=<tool> N value unit ..."), which benchstat reads
// too; report renders such files as markdown tables into the generated
// block of the doc, and as data for bench/chart.gp. The other subcommands
// are the processes run starts:
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
		fmt.Fprintln(os.Stderr, "usage: lockbench run|report|worker|noop [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runMain(os.Args[2:], os.Stdout)
	case "report":
		err = reportMain(os.Args[2:])
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
