//go:build linux

// Package metrics counts what an nfslockfs mount does as Prometheus
// metrics, with the official Go client. A Mount is the mount's
// fusefs.Events; Handler serves what a registry gathers.
//
// The names follow Prometheus's conventions: the nfslockfs_ prefix, base
// units (seconds), _total for counters. docs/operations.md lists them,
// with example queries and a Grafana dashboard.
package metrics

import (
	"net/http"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"

	"github.com/nfslockfs/nfslockfs/fusefs"
	"github.com/nfslockfs/nfslockfs/internal/buildinfo"
)

// A Mount holds one mount's metrics. Its methods are safe for concurrent
// use.
type Mount struct {
	held, waiters  prometheus.Gauge
	acquires       *prometheus.CounterVec
	wait, hold     prometheus.Histogram
	releases       *prometheus.CounterVec
	breaks, stales prometheus.Counter
	lost           prometheus.Counter
	backingErrors  *prometheus.CounterVec
}

var _ fusefs.Events = (*Mount)(nil)

// durationBuckets spans 1 ms to about 70 minutes, by factors of 4: a
// handoff on one host, a poll across hosts, and builds held for an hour.
var durationBuckets = prometheus.ExponentialBuckets(0.001, 4, 12)

// New registers a mount's metrics, the build's nfslockfs_build_info and
// the Go runtime's and process's standard collectors with reg. It fails if
// reg already holds metrics of these names.
func New(reg prometheus.Registerer, build buildinfo.Info) (*Mount, error) {
	m := &Mount{
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nfslockfs_locks_held",
			Help: "Locks held through the mount now.",
		}),
		waiters: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nfslockfs_waiters",
			Help: "Opens blocked waiting for a held lock now.",
		}),
		acquires: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nfslockfs_acquires_total",
			Help: "Opens for writing (attempts to take a lock), by how they ended: acquired, busy (EAGAIN), exists (EEXIST), interrupted, shutdown, error.",
		}, []string{"result"}),
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "nfslockfs_acquire_wait_seconds",
			Help:    "How long each acquired lock was waited for.",
			Buckets: durationBuckets,
		}),
		hold: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "nfslockfs_hold_seconds",
			Help:    "How long each lock was held, from its acquisition to its release.",
			Buckets: durationBuckets,
		}),
		releases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nfslockfs_releases_total",
			Help: "Locks the mount stopped holding, by how: released, broken (by someone else before the release), lost (its lease was lost before the release), abandoned (the release kept failing as the daemon stopped).",
		}, []string{"result"}),
		breaks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nfslockfs_breaks_total",
			Help: "Locks held through the mount that were found broken by someone else.",
		}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nfslockfs_lost_leases_total",
			Help: "Locks held through the mount, in lease directories, whose lease was lost (not renewed in time, or found broken).",
		}),
		stales: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nfslockfs_stale_cleanups_total",
			Help: "Locks of dead holders that acquisitions through the mount removed.",
		}),
		backingErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nfslockfs_backing_errors_total",
			Help: "Operations on the backing directory that failed, by operation and errno.",
		}, []string{"operation", "errno"}),
	}
	// Every result is exported from the start, at 0, so that rate() and
	// alerts see a series before its first event.
	for _, r := range []fusefs.AcquireResult{fusefs.Acquired, fusefs.Busy, fusefs.Exists, fusefs.Interrupted, fusefs.Stopping, fusefs.Failed} {
		m.acquires.WithLabelValues(string(r))
	}
	for _, r := range []fusefs.ReleaseResult{fusefs.Released, fusefs.WasBroken, fusefs.LeaseGone, fusefs.Abandoned} {
		m.releases.WithLabelValues(string(r))
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "nfslockfs_build_info",
		Help:        "Always 1; its labels name the running build.",
		ConstLabels: prometheus.Labels{"version": build.Version, "revision": build.Revision, "goversion": build.GoVersion},
	})
	info.Set(1)
	for _, c := range []prometheus.Collector{
		m.held, m.waiters, m.acquires, m.wait, m.hold, m.releases, m.breaks, m.lost, m.stales, m.backingErrors, info,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Handler serves the metrics g gathers in Prometheus's exposition formats.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}

func (m *Mount) Waiting(delta int) { m.waiters.Add(float64(delta)) }

func (m *Mount) Acquire(result fusefs.AcquireResult, waited time.Duration) {
	m.acquires.WithLabelValues(string(result)).Inc()
	if result == fusefs.Acquired {
		m.held.Inc()
		m.wait.Observe(waited.Seconds())
	}
}

func (m *Mount) Release(result fusefs.ReleaseResult, held time.Duration) {
	m.releases.WithLabelValues(string(result)).Inc()
	m.held.Dec()
	m.hold.Observe(held.Seconds())
}

func (m *Mount) Broken()       { m.breaks.Inc() }
func (m *Mount) LeaseLost()    { m.lost.Inc() }
func (m *Mount) StaleCleanup() { m.stales.Inc() }

func (m *Mount) BackingError(op fusefs.Operation, errno syscall.Errno) {
	name := unix.ErrnoName(errno)
	if name == "" {
		name = errno.Error()
	}
	m.backingErrors.WithLabelValues(string(op), name).Inc()
}
