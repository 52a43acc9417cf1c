package server

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// entryCollector reports, at scrape time, the counters the HTTP servers of
// entrypoints keep anyway: the request guard's rejections. The traffic
// path does nothing for it. (QUIC demultiplexers report through
// quic.DemuxMetrics; HTTP/3 requests are counted with the other HTTP
// requests, protocol "HTTP/3".)
type entryCollector struct {
	server atomic.Pointer[Server]
	guard  *prometheus.Desc
}

func newEntryCollector(reg prometheus.Registerer) *entryCollector {
	c := &entryCollector{
		guard: prometheus.NewDesc("proxynow_http_guard_rejections_total",
			"HTTP/1 connections the request hygiene guard answered 400 and closed (malformed or ambiguous requests; they reach no route).",
			[]string{"entrypoint"}, nil),
	}
	reg.MustRegister(c)
	return c
}

func (c *entryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.guard }

func (c *entryCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.server.Load()
	// The HTTP servers start while Start binds; ready says it is done.
	if s == nil || !s.ready.Load() {
		return
	}
	for _, p := range s.cur.Load().eps {
		if p.hs != nil && p.hs.srv != nil {
			ch <- prometheus.MustNewConstMetric(c.guard, prometheus.CounterValue, float64(p.hs.srv.GuardViolations()), p.cfg.Name)
		}
	}
}
