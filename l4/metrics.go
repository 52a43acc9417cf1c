package l4

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/proxynow/proxynow/upstream/accesslog"
)

// Metrics are the L4 families. One value serves the whole process (and
// survives reloads); servers and handlers get children resolved once, when
// they are built, through Entrypoint, Route and UDP. Labels are entrypoint,
// route and service names from the configuration and small fixed sets.
type Metrics struct {
	accepted     *prometheus.CounterVec   // entrypoint
	rejected     *prometheus.CounterVec   // entrypoint, reason
	active       *prometheus.GaugeVec     // entrypoint
	proxyHeaders *prometheus.CounterVec   // entrypoint, result
	routeConns   *prometheus.CounterVec   // entrypoint, route, service
	received     *prometheus.CounterVec   // entrypoint, route, service
	sent         *prometheus.CounterVec   // entrypoint, route, service
	duration     *prometheus.HistogramVec // entrypoint, route, service
	flowsActive  *prometheus.GaugeVec     // entrypoint, route, service
	flowsCreated *prometheus.CounterVec   // entrypoint, route, service
	flowsExpired *prometheus.CounterVec   // entrypoint, route, service
	dgramsIn     *prometheus.CounterVec   // entrypoint, route, service
	dgramsOut    *prometheus.CounterVec   // entrypoint, route, service
	dgramsDrop   *prometheus.CounterVec   // entrypoint, reason
}

// NewMetrics registers the L4 families on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	ers := []string{"entrypoint", "route", "service"}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	}
	m := &Metrics{
		accepted:     counter("proxynow_l4_connections_accepted_total", "TCP connections accepted from the listener, including those then rejected.", "entrypoint"),
		rejected:     counter("proxynow_l4_connections_rejected_total", "TCP connections closed at once: max_connections reached, or a missing or refused PROXY header.", "entrypoint", "reason"),
		active:       gauge("proxynow_l4_connections_active", "TCP connections open now.", "entrypoint"),
		proxyHeaders: counter("proxynow_l4_proxy_protocol_headers_total", "PROXY protocol headers accepted from trusted peers, or refused (malformed, or sent by an untrusted peer).", "entrypoint", "result"),
		routeConns:   counter("proxynow_l4_route_connections_total", "TCP connections handed to a tcp_route.", ers...),
		received:     counter("proxynow_l4_received_bytes_total", "Bytes received from clients on tcp_routes, counted at each idle-timeout check (a quarter of timeouts.idle) and when the connection ends.", ers...),
		sent:         counter("proxynow_l4_sent_bytes_total", "Bytes sent to clients on tcp_routes, counted at each idle-timeout check (a quarter of timeouts.idle) and when the connection ends.", ers...),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                            "proxynow_l4_connection_duration_seconds",
			Help:                            "Lifetime of tcp_route connections.",
			Buckets:                         []float64{.01, .05, .1, .5, 1, 5, 10, 30, 60, 300, 1800, 3600},
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  160,
			NativeHistogramMinResetDuration: time.Hour,
		}, ers),
		flowsActive:  gauge("proxynow_l4_udp_flows_active", "UDP flows open now.", ers...),
		flowsCreated: counter("proxynow_l4_udp_flows_created_total", "UDP flows opened.", ers...),
		flowsExpired: counter("proxynow_l4_udp_flows_expired_total", "UDP flows ended by their idle timeout.", ers...),
		dgramsIn:     counter("proxynow_l4_udp_datagrams_received_total", "Datagrams received from clients.", ers...),
		dgramsOut:    counter("proxynow_l4_udp_datagrams_sent_total", "Datagrams sent to clients.", ers...),
		dgramsDrop:   counter("proxynow_l4_udp_datagrams_dropped_total", "Datagrams dropped: flow table full (max_flows), no backend, or a failed write.", "entrypoint", "reason"),
	}
	reg.MustRegister(m.accepted, m.rejected, m.active, m.proxyHeaders, m.routeConns, m.received, m.sent,
		m.duration, m.flowsActive, m.flowsCreated, m.flowsExpired, m.dgramsIn, m.dgramsOut, m.dgramsDrop)
	return m
}

// EntrypointMetrics are a TCPServer's children. A nil value counts
// nothing.
type EntrypointMetrics struct {
	accepted, rejectedMax, rejectedProxy prometheus.Counter
	proxyAccepted, proxyRefused          prometheus.Counter
	active                               prometheus.Gauge
}

// Entrypoint resolves the children of a TCP entrypoint (nil m: nil).
func (m *Metrics) Entrypoint(name string) *EntrypointMetrics {
	if m == nil {
		return nil
	}
	return &EntrypointMetrics{
		accepted:      m.accepted.WithLabelValues(name),
		rejectedMax:   m.rejected.WithLabelValues(name, "max_connections"),
		rejectedProxy: m.rejected.WithLabelValues(name, "proxy_header"),
		proxyAccepted: m.proxyHeaders.WithLabelValues(name, "accepted"),
		proxyRefused:  m.proxyHeaders.WithLabelValues(name, "refused"),
		active:        m.active.WithLabelValues(name),
	}
}

func (e *EntrypointMetrics) accept() {
	if e != nil {
		e.accepted.Inc()
		e.active.Inc()
	}
}

func (e *EntrypointMetrics) closed() {
	if e != nil {
		e.active.Dec()
	}
}

func (e *EntrypointMetrics) rejectMax() {
	if e != nil {
		e.accepted.Inc()
		e.rejectedMax.Inc()
	}
}

// proxyHeader counts a PROXY header read from a trusted peer (ok) or
// refused; a refused one also rejects its connection.
func (e *EntrypointMetrics) proxyHeader(ok bool) {
	switch {
	case e == nil:
	case ok:
		e.proxyAccepted.Inc()
	default:
		e.proxyRefused.Inc()
		e.rejectedProxy.Inc()
	}
}

// RouteMetrics are the children of one tcp_route on one entrypoint. A nil
// value counts nothing.
type RouteMetrics struct {
	conns, received, sent prometheus.Counter
	duration              prometheus.Observer
}

// Route resolves the children of a tcp_route on an entrypoint (nil m: nil).
func (m *Metrics) Route(entrypoint, route, service string) *RouteMetrics {
	if m == nil {
		return nil
	}
	return &RouteMetrics{
		conns:    m.routeConns.WithLabelValues(entrypoint, route, service),
		received: m.received.WithLabelValues(entrypoint, route, service),
		sent:     m.sent.WithLabelValues(entrypoint, route, service),
		duration: m.duration.WithLabelValues(entrypoint, route, service),
	}
}

func (r *RouteMetrics) start() {
	if r != nil {
		r.conns.Inc()
	}
}

// moved counts bytes a pump moved, from the client (up) or to it.
func (r *RouteMetrics) moved(up bool, n int64) {
	switch {
	case r == nil || n <= 0:
	case up:
		r.received.Add(float64(n))
	default:
		r.sent.Add(float64(n))
	}
}

func (r *RouteMetrics) end(d time.Duration) {
	if r != nil {
		r.duration.Observe(d.Seconds())
	}
}

// UDPMetrics are a UDPServer's children. A nil value counts nothing.
type UDPMetrics struct {
	active                                   prometheus.Gauge
	created, expired, in, out                prometheus.Counter
	dropFull, dropNoBackend, dropWriteFailed prometheus.Counter
}

// UDP resolves the children of a UDP entrypoint and its route (nil m: nil).
func (m *Metrics) UDP(entrypoint, route, service string) *UDPMetrics {
	if m == nil {
		return nil
	}
	return &UDPMetrics{
		active:          m.flowsActive.WithLabelValues(entrypoint, route, service),
		created:         m.flowsCreated.WithLabelValues(entrypoint, route, service),
		expired:         m.flowsExpired.WithLabelValues(entrypoint, route, service),
		in:              m.dgramsIn.WithLabelValues(entrypoint, route, service),
		out:             m.dgramsOut.WithLabelValues(entrypoint, route, service),
		dropFull:        m.dgramsDrop.WithLabelValues(entrypoint, "max_flows"),
		dropNoBackend:   m.dgramsDrop.WithLabelValues(entrypoint, "no_backend"),
		dropWriteFailed: m.dgramsDrop.WithLabelValues(entrypoint, "write_failed"),
	}
}

// Reasons a datagram is dropped, indexing UDPMetrics' counters.
const (
	dropFull = iota
	dropNoBackend
	dropWrite
)

func (u *UDPMetrics) drop(reason int) { u.dropN(reason, 1) }

// dropN counts n datagrams dropped for reason. Counts go in per batch:
// a whole-number Add is one atomic add.
func (u *UDPMetrics) dropN(reason, n int) {
	if u == nil || n <= 0 {
		return
	}
	switch reason {
	case dropFull:
		u.dropFull.Add(float64(n))
	case dropNoBackend:
		u.dropNoBackend.Add(float64(n))
	default:
		u.dropWriteFailed.Add(float64(n))
	}
}

func (u *UDPMetrics) receivedN(n int) {
	if u != nil && n > 0 {
		u.in.Add(float64(n))
	}
}

func (u *UDPMetrics) sentN(n int) {
	if u != nil && n > 0 {
		u.out.Add(float64(n))
	}
}

func (u *UDPMetrics) opened() {
	if u != nil {
		u.created.Inc()
		u.active.Inc()
	}
}

func (u *UDPMetrics) ended(expired bool) {
	if u != nil {
		u.active.Dec()
		if expired {
			u.expired.Inc()
		}
	}
}

// closeReason names why a tunnel ended, for the access log.
func closeReason(err error, shutdown bool) string {
	switch {
	case err == nil:
		return "eof"
	case errors.Is(err, errIdle):
		return "idle"
	case shutdown:
		return "shutdown"
	case errors.Is(err, net.ErrClosed):
		return "closed"
	case errors.Is(err, ErrProxyHeaderUntrusted):
		return "proxy_header"
	}
	return "error"
}

// errNoBackend ends a connection no backend could take (access log only).
var errNoBackend = errors.New("no backend")

// observe counts and logs one ended connection.
func (p *Proxy) observe(ctx context.Context, c *Conn, start time.Time, backend string, up, down int64, err error) {
	d := time.Since(start)
	if backend != "" {
		p.Metrics.end(d)
	}
	if p.AccessLog.Load() == nil {
		return
	}
	reason := closeReason(err, ctx.Err() != nil)
	if errors.Is(err, errNoBackend) {
		reason = "no_backend"
	}
	p.AccessLog.LogConn(&accesslog.Conn{
		Time: start, Network: "tcp", Entrypoint: c.Entrypoint, Route: p.Route, Service: p.Service,
		Client: c.Client, Backend: backend, BytesIn: up, BytesOut: down, Duration: d, Reason: reason,
	})
}

// flowStats are what a flow's access log line reports.
type flowStats struct {
	start   time.Time
	in, out atomic.Int64 // payload bytes from and to the client
	reason  string       // set under UDPServer.mu before remove; "" means shutdown
}

// flowEnded counts and logs a flow removed from the table; s.mu is held.
func (s *UDPServer) flowEnded(f *flow) {
	f.metrics.ended(f.stats.reason == "idle")
	if s.AccessLog.Load() == nil {
		return
	}
	reason := f.stats.reason
	if reason == "" {
		reason = "shutdown"
	}
	s.AccessLog.LogConn(&accesslog.Conn{
		Time: f.stats.start, Network: "udp", Entrypoint: s.Entrypoint, Route: f.route, Service: f.service,
		Client: netip.AddrPortFrom(f.client.Addr().Unmap(), f.client.Port()), Backend: f.backend.Backend.Addr,
		BytesIn: f.stats.in.Load(), BytesOut: f.stats.out.Load(), Duration: time.Since(f.stats.start), Reason: reason,
	})
}
