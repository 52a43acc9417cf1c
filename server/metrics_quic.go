package server

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/proxynow/proxynow/quic"
)

// quicCollector reports, at scrape time, what the entrypoints' own
// counters hold: the QUIC demultiplexers of http3 entrypoints with
// quic_routes (SNI passthrough of QUIC flows), from their Stats, and the
// HTTP request guard's rejections. The traffic path does nothing for it.
// HTTP/3 requests themselves are counted with the other HTTP requests
// (protocol "HTTP/3").
type quicCollector struct {
	server   atomic.Pointer[Server]
	flows    *prometheus.Desc
	initials *prometheus.Desc
	dgrams   *prometheus.Desc
	migrated *prometheus.Desc
	dropped  *prometheus.Desc
	guard    *prometheus.Desc
}

func newQUICCollector(reg prometheus.Registerer) *quicCollector {
	ep := []string{"entrypoint"}
	c := &quicCollector{
		flows: prometheus.NewDesc("proxynow_quic_passthrough_flows_active",
			"QUIC flows passed through to a quic_route's backend now.", ep, nil),
		initials: prometheus.NewDesc("proxynow_quic_initials_total",
			"QUIC client Initials by where they went: routed (a quic_route's SNI matched) or local (the HTTP/3 server).", []string{"entrypoint", "result"}, nil),
		dgrams: prometheus.NewDesc("proxynow_quic_datagrams_total",
			"QUIC datagrams relayed by the demultiplexer, by direction.", []string{"entrypoint", "direction"}, nil),
		migrated: prometheus.NewDesc("proxynow_quic_passthrough_migrations_total",
			"Passthrough flows that moved to a new client address (connection migration).", ep, nil),
		dropped: prometheus.NewDesc("proxynow_quic_datagrams_dropped_total",
			"QUIC datagrams or clients dropped by a bound of the demultiplexer, by reason.", []string{"entrypoint", "reason"}, nil),
	}
	c.guard = prometheus.NewDesc("proxynow_http_guard_rejections_total",
		"HTTP/1 connections the request hygiene guard answered 400 and closed (malformed or ambiguous requests; they reach no route).", ep, nil)
	reg.MustRegister(c)
	return c
}

func (c *quicCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.flows, c.initials, c.dgrams, c.migrated, c.dropped, c.guard} {
		ch <- d
	}
}

func (c *quicCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.server.Load()
	// The demultiplexers are made while Start binds; ready says it is done.
	if s == nil || !s.ready.Load() {
		return
	}
	for _, p := range s.cur.Load().eps {
		if p.hs != nil && p.hs.srv != nil {
			ch <- prometheus.MustNewConstMetric(c.guard, prometheus.CounterValue, float64(p.hs.srv.GuardViolations()), p.cfg.Name)
		}
		if p.quic != nil && p.quic.demux != nil {
			c.collect(ch, p.cfg.Name, p.quic.demux.Stats())
		}
	}
}

func (c *quicCollector) collect(ch chan<- prometheus.Metric, ep string, st quic.DemuxStats) {
	gauge := func(d *prometheus.Desc, v int, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), append([]string{ep}, lv...)...)
	}
	counter := func(d *prometheus.Desc, v uint64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{ep}, lv...)...)
	}
	gauge(c.flows, st.Flows)
	counter(c.initials, st.Routed, "routed")
	counter(c.initials, st.Unrouted, "local")
	counter(c.dgrams, st.ToBackend, "to_backend")
	counter(c.dgrams, st.ToClient, "to_client")
	counter(c.dgrams, st.ToLocal, "to_local")
	counter(c.migrated, st.Migrations)
	for _, d := range []struct {
		reason string
		n      uint64
	}{
		{"pending_full", st.DroppedPendingFull}, {"pending_bytes", st.DroppedPendingBytes},
		{"hello_timeout", st.DroppedHelloTimeout}, {"max_flows", st.DroppedFlowsFull},
		{"no_backend", st.DroppedNoBackend}, {"local_full", st.DroppedLocalFull},
		{"no_local", st.DroppedNoLocal}, {"write_failed", st.DroppedWrite}, {"cids_full", st.DroppedCIDsFull},
	} {
		counter(c.dropped, d.n, d.reason)
	}
}
