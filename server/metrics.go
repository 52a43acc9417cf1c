package server

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"slices"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/l4"
	"github.com/proxynow/proxynow/l7"
	"github.com/proxynow/proxynow/quic"
	"github.com/proxynow/proxynow/tlsmux"
	"github.com/proxynow/proxynow/upstream"
	"github.com/proxynow/proxynow/upstream/accesslog"
)

// Metrics is the process's registry and every layer's families on it. It
// is made once per process and outlives configurations: a reload builds the
// next generation's servers with the same Metrics, so series keep counting
// and children are only added (one per new route, service or backend).
type Metrics struct {
	Registry *prometheus.Registry
	L4       *l4.Metrics
	TLS      *tlsmux.Metrics
	HTTP     *l7.Metrics
	Upstream *upstream.Collector
	QUIC     *quic.DemuxMetrics
	// AccessLogLines counts access log lines by result (written, dropped).
	AccessLogLines *prometheus.CounterVec
	// AccessLogReopens counts reopens of the access log file (SIGUSR1, a
	// reload) by result (ok, error).
	AccessLogReopens *prometheus.CounterVec
}

// NewMetrics makes the registry with the process and Go runtime
// collectors, proxynow_build_info, and every layer's families. version is
// the binary's version ("" when unknown).
func NewMetrics(version string) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
	)
	if version == "" {
		version = "unknown"
	}
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "proxynow_build_info",
		Help: "Always 1; the labels name the running binary.",
	}, []string{"version", "goversion"})
	info.WithLabelValues(version, runtime.Version()).Set(1)
	lines := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "proxynow_accesslog_lines_total",
		Help: "Access log lines written, or dropped because the log's queue was full or its sink failed.",
	}, []string{"result"})
	// Both children exist from the start: a drop rate needs its zero.
	lines.WithLabelValues("written")
	lines.WithLabelValues("dropped")
	reopens := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "proxynow_accesslog_reopens_total",
		Help: "Reopens of the access log file (SIGUSR1 or a reload, for log rotation); on error the old file is kept.",
	}, []string{"result"})
	reopens.WithLabelValues(reopenOK)
	reopens.WithLabelValues(reopenError)
	reg.MustRegister(info, lines, reopens)
	return &Metrics{
		Registry:         reg,
		L4:               l4.NewMetrics(reg),
		TLS:              tlsmux.NewMetrics(reg),
		HTTP:             l7.NewMetrics(reg),
		Upstream:         upstream.NewCollector(reg),
		AccessLogLines:   lines,
		AccessLogReopens: reopens,
		QUIC:             quic.NewDemuxMetrics(reg),
	}
}

// Registry is the registry the server's metrics are on.
func (s *Server) Registry() *prometheus.Registry { return s.metrics.Registry }

// Metrics is the server's metrics, to hand to the next configuration's
// server on reload.
func (s *Server) Metrics() *Metrics { return s.metrics }

// Options are the parts of a Server that outlive one configuration: a
// server made for another configuration may share the previous one's
// Metrics.
type Options struct {
	Logger *slog.Logger
	// Metrics is the process's registry and families; nil makes new ones.
	Metrics *Metrics
	// Version labels proxynow_build_info when Metrics is nil.
	Version string
}

// ops is the operations side of a Server: metrics, access log, admin
// endpoint and readiness.
type ops struct {
	metrics *Metrics
	// accessLog holds the Writer of cfg.Log.Access (none without it); the
	// layers hold the Switch, and a reload that changes the block swaps
	// the Writer (accesslog_swap.go). Shutdown and Close close it.
	accessLog accesslog.Switch
	admin     *admin
	ready     atomic.Bool // every listener is bound
	draining  atomic.Bool // Shutdown or Close began
}

func (s *Server) initOps(cfg *config.Config, o Options) error {
	s.metrics = o.Metrics
	if s.metrics == nil {
		s.metrics = NewMetrics(o.Version)
	}
	w, err := s.openAccessLog(cfg.Log.Access, nil)
	if err != nil {
		return err
	}
	s.accessLog.Swap(w)
	if cfg.Admin != nil {
		a, err := newAdmin(s, cfg.Admin)
		if err != nil {
			s.closeAccessLog(context.Background())
			return err
		}
		s.admin = a
	}
	return nil
}

// publish points the scrape-time collectors at g's pools and
// certificates.
func (s *Server) publish(g *generation) {
	names := make([]string, 0, len(g.services))
	for n, e := range g.services {
		if e.pool != nil {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	pools := make([]*upstream.Pool, len(names))
	for i, n := range names {
		pools[i] = g.services[n].pool
	}
	s.metrics.Upstream.SetPools(pools)
	if g.certs != nil {
		s.metrics.TLS.SetCertStore(g.certs)
	}
}

// stopOps stops the admin endpoint and flushes and closes the access log
// this server opened.
func (s *Server) stopOps(ctx context.Context) error {
	var err error
	if s.admin != nil {
		err = s.admin.shutdown(ctx)
	}
	return errors.Join(err, s.closeAccessLog(ctx))
}

// closeAccessLog closes the Writer in use (again: a no-op). It stays in
// the Switch, so a line logged after it is counted as dropped.
func (s *Server) closeAccessLog(ctx context.Context) error {
	return s.accessLog.Load().Close(ctx)
}

// AccessLog is the access log writer in use (nil: none).
func (s *Server) AccessLog() *accesslog.Writer { return s.accessLog.Load() }
