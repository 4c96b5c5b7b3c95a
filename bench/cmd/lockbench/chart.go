package main

import (
	"bytes"
	"fmt"
	"time"
)

// chartData is the summary as a table for bench/chart.gp: one row per
// tool, "-" where a figure is missing, and 1 in the last column for ours.
func (r *results) chartData() []byte {
	var b bytes.Buffer
	b.WriteString("# tool\tuncontended_us\thandoff_median_ms\tcycles_per_s\tsyscalls_per_cycle\tours\n")
	for _, t := range r.tools {
		if t.kind == control {
			continue
		}
		cols := []string{"-", "-", "-", "-"}
		if tm, ok := r.uncontended[t.name]; ok {
			cols[0] = fmt.Sprintf("%.2f", float64(median(tm.gross))/1e3)
		}
		if hs := r.handoffs[t.name]; len(hs) > 0 {
			cols[1] = fmt.Sprintf("%.3f", float64(median(latencies(hs)))/float64(time.Millisecond))
		}
		if c, ok := r.contention[t.name]; ok {
			cols[2] = fmt.Sprintf("%.1f", c.perSecond())
		}
		if c, ok := r.syscalls[t.name]; ok {
			n := c.total()
			if t.kind == mountKind && r.daemonSyscalls != nil {
				n = r.daemonSyscalls.total()
			}
			cols[3] = fmt.Sprintf("%.1f", n)
		}
		ours := 0
		if t.pkg == "" {
			ours = 1
		}
		fmt.Fprintf(&b, "%q\t%s\t%s\t%s\t%s\t%d\n", t.name, cols[0], cols[1], cols[2], cols[3], ours)
	}
	return b.Bytes()
}
