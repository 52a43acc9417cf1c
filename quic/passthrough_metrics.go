package quic

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// DemuxMetrics exports the Stats of every Demux added to it as Prometheus
// families, read at scrape time: the datagram path pays nothing for them.
// One value serves the process and survives reloads; a Demux is added when
// it starts and removed when it is closed.
type DemuxMetrics struct {
	mu      sync.Mutex
	demuxes map[*Demux]struct{}
}

var (
	demuxFlows = prometheus.NewDesc("proxynow_quic_passthrough_flows_active",
		"QUIC passthrough flows open now.", []string{"entrypoint"}, nil)
	demuxPending = prometheus.NewDesc("proxynow_quic_passthrough_pending",
		"Client addresses whose ClientHello is still being collected.", []string{"entrypoint"}, nil)
	demuxLocalPeers = prometheus.NewDesc("proxynow_quic_passthrough_local_peers",
		"Client addresses remembered as the local HTTP/3 server's.", []string{"entrypoint"}, nil)
	demuxCIDs = prometheus.NewDesc("proxynow_quic_passthrough_connection_ids",
		"Backend connection IDs tracked to follow clients that change address.", []string{"entrypoint"}, nil)
	demuxDatagrams = prometheus.NewDesc("proxynow_quic_passthrough_datagrams_total",
		"Datagrams relayed, by destination: backend, client (from a backend) or local (the HTTP/3 server).",
		[]string{"entrypoint", "to"}, nil)
	demuxHellos = prometheus.NewDesc("proxynow_quic_passthrough_hellos_total",
		"First flights read: routed to a quic_route, or handed to the local server (no route matched, or not readable).",
		[]string{"entrypoint", "result"}, nil)
	demuxMigrations = prometheus.NewDesc("proxynow_quic_passthrough_migrations_total",
		"Passthrough flows moved to a new client address (NAT rebinding).", []string{"entrypoint"}, nil)
	demuxDropped = prometheus.NewDesc("proxynow_quic_passthrough_dropped_total",
		"Datagrams, pending addresses or flows dropped, by the bound or failure that dropped them.",
		[]string{"entrypoint", "reason"}, nil)
)

// NewDemuxMetrics registers the families on reg.
func NewDemuxMetrics(reg prometheus.Registerer) *DemuxMetrics {
	m := &DemuxMetrics{demuxes: map[*Demux]struct{}{}}
	reg.MustRegister(m)
	return m
}

// Add exports d's Stats until Remove. A nil m does nothing.
func (m *DemuxMetrics) Add(d *Demux) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.demuxes[d] = struct{}{}
	m.mu.Unlock()
}

// Remove stops exporting d.
func (m *DemuxMetrics) Remove(d *Demux) {
	if m == nil {
		return
	}
	m.mu.Lock()
	delete(m.demuxes, d)
	m.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (m *DemuxMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{demuxFlows, demuxPending, demuxLocalPeers, demuxCIDs,
		demuxDatagrams, demuxHellos, demuxMigrations, demuxDropped} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. Two Demuxes of one entrypoint
// (during a reload) add up.
func (m *DemuxMetrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	sums := map[string]*DemuxStats{}
	var order []string
	for d := range m.demuxes {
		ep := d.opts.Entrypoint
		s := sums[ep]
		if s == nil {
			s = new(DemuxStats)
			sums[ep] = s
			order = append(order, ep)
		}
		s.add(d.Stats())
	}
	m.mu.Unlock()
	for _, ep := range order {
		s := sums[ep]
		gauge := func(d *prometheus.Desc, v int, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), append([]string{ep}, labels...)...)
		}
		counter := func(d *prometheus.Desc, v uint64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{ep}, labels...)...)
		}
		gauge(demuxFlows, s.Flows)
		gauge(demuxPending, s.Pending)
		gauge(demuxLocalPeers, s.LocalPeers)
		gauge(demuxCIDs, s.CIDs)
		counter(demuxDatagrams, s.ToBackend, "backend")
		counter(demuxDatagrams, s.ToClient, "client")
		counter(demuxDatagrams, s.ToLocal, "local")
		counter(demuxHellos, s.Routed, "routed")
		counter(demuxHellos, s.Unrouted, "local")
		counter(demuxMigrations, s.Migrations)
		for _, r := range []struct {
			reason string
			v      uint64
		}{
			{"pending_full", s.DroppedPendingFull},
			{"pending_bytes", s.DroppedPendingBytes},
			{"hello_timeout", s.DroppedHelloTimeout},
			{"flows_full", s.DroppedFlowsFull},
			{"no_backend", s.DroppedNoBackend},
			{"local_queue_full", s.DroppedLocalFull},
			{"no_local_server", s.DroppedNoLocal},
			{"write_failed", s.DroppedWrite},
			{"connection_ids_full", s.DroppedCIDsFull},
			{"unconfirmed_flow", s.DroppedUnconfirmed},
		} {
			counter(demuxDropped, r.v, r.reason)
		}
	}
}

// add sums o into s.
func (s *DemuxStats) add(o DemuxStats) {
	s.Flows += o.Flows
	s.Pending += o.Pending
	s.LocalPeers += o.LocalPeers
	s.CIDs += o.CIDs
	s.ToBackend += o.ToBackend
	s.ToClient += o.ToClient
	s.ToLocal += o.ToLocal
	s.Routed += o.Routed
	s.Unrouted += o.Unrouted
	s.Migrations += o.Migrations
	s.DroppedPendingFull += o.DroppedPendingFull
	s.DroppedPendingBytes += o.DroppedPendingBytes
	s.DroppedHelloTimeout += o.DroppedHelloTimeout
	s.DroppedFlowsFull += o.DroppedFlowsFull
	s.DroppedNoBackend += o.DroppedNoBackend
	s.DroppedLocalFull += o.DroppedLocalFull
	s.DroppedNoLocal += o.DroppedNoLocal
	s.DroppedWrite += o.DroppedWrite
	s.DroppedCIDsFull += o.DroppedCIDsFull
	s.DroppedUnconfirmed += o.DroppedUnconfirmed
}
