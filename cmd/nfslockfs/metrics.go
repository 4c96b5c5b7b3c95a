//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/nfslockfs/nfslockfs/fusefs"
	"github.com/nfslockfs/nfslockfs/internal/buildinfo"
	"github.com/nfslockfs/nfslockfs/metrics"
)

// metricsServer serves --metrics-listen's /metrics for as long as the
// daemon runs.
type metricsServer struct {
	events fusefs.Events // the mount's metrics; nil without --metrics-listen
	http   *http.Server
	done   chan struct{} // closed when the serving goroutine has returned
}

// startMetrics listens on addr and serves the mount's metrics there, at
// /metrics. It listens before the mount comes up, so that an address in
// use fails the start. An empty addr serves nothing.
func startMetrics(addr string, log logrus.FieldLogger) (*metricsServer, error) {
	if addr == "" {
		return &metricsServer{}, nil
	}
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, buildinfo.Read())
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics.Handler(reg))
	s := &metricsServer{events: m, http: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if err := s.http.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.WithError(err).Error("serving metrics failed")
		}
	}()
	log.WithField("address", ln.Addr().String()).Info("serving metrics at /metrics")
	return s, nil
}

// stop closes the listener and the connections, and waits for the serving
// goroutine to end.
func (s *metricsServer) stop() {
	if s.http == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if s.http.Shutdown(ctx) != nil {
		s.http.Close()
	}
	<-s.done
}
