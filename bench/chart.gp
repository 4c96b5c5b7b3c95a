# docs/benchmarks.png: the results of bench/cmd/lockbench as four bar
# charts, ours in red. bench/run.sh runs
#   gnuplot -e "datafile='DATA'; outfile='PNG'; stamp='DATE'" bench/chart.gp
# DATA (lockbench report -chart): tab-separated rows "tool" cycle_us
# handoff_median_ms handoff_p90_ms cycles_per_s ours(0/1), "-" where a
# figure is missing.
set terminal pngcairo size 1500,1100 font "sans,10"
set output outfile
set datafile separator "\t"
set datafile missing "-"
set style fill solid 0.85 border -1
set boxwidth 0.7
set xtics rotate by -35 left nomirror
set grid ytics
set key off
set bmargin 9
color(ours) = ours > 0 ? 0xc0392b : 0x2e6da4
label(x) = x >= 1000 ? sprintf("%.0f", x) : sprintf("%.3g", x)
set offsets 0, 0, graph 0.08, 0
set multiplot layout 2,2 title "nfslockfs (red) and the lock tools people use today — ".stamp

set logscale y
set title "Uncontended acquire+release, µs (log; commands: whole invocations)"
plot datafile using 0:2:(color($6)):xtic(1) with boxes lc rgb variable, \
     '' using 0:2:(label($2)) with labels offset 0,0.6 font "sans,7"
set title "Same-host handoff latency, median ms (log)"
plot datafile using 0:3:(color($6)):xtic(1) with boxes lc rgb variable, \
     '' using 0:3:(label($3)) with labels offset 0,0.6 font "sans,7"
set title "Same-host handoff latency, p90 ms (log)"
plot datafile using 0:4:(color($6)):xtic(1) with boxes lc rgb variable, \
     '' using 0:4:(label($4)) with labels offset 0,0.6 font "sans,7"
set title "4 processes contending for one lock, cycles/s (log)"
plot datafile using 0:5:(color($6)):xtic(1) with boxes lc rgb variable, \
     '' using 0:5:(sprintf("%.0f", $5)) with labels offset 0,0.6 font "sans,7"
unset multiplot
