package l4

import (
	"time"

	"github.com/proxynow/proxynow/upstream"
)

// TCPLive holds the settings of a TCPServer that a configuration reload
// may change while the server keeps its listening socket.
type TCPLive struct {
	Handler       Handler
	ProxyProtocol *ProxyProtocolIn
	// MaxConnections caps open connections; 0 means no cap.
	MaxConnections int
}

// Update replaces the server's handler, PROXY protocol settings and
// connection cap for connections accepted from now on; connections already
// accepted keep the handler they were given. It is safe to call while
// Serve runs, and it takes precedence over the struct fields.
func (s *TCPServer) Update(l TCPLive) { s.live.Store(&l) }

// current returns the settings in force: the last Update's, else the
// struct fields. It does not allocate.
func (s *TCPServer) current() (h Handler, pp *ProxyProtocolIn, maxConns int) {
	if l := s.live.Load(); l != nil {
		return l.Handler, l.ProxyProtocol, l.MaxConnections
	}
	return s.Handler, s.ProxyProtocol, s.MaxConnections
}

// UDPLive holds the settings of a UDPServer that a configuration reload
// may change while the server keeps its socket.
type UDPLive struct {
	Route string
	// Pool is nil when no udp_route serves the entrypoint: datagrams that
	// would open a flow are dropped.
	Pool          *upstream.Pool
	ProxyProtocol bool
	// IdleTimeout ends a flow with no datagram either way; 0 means 30s.
	IdleTimeout time.Duration
	// MaxFlows caps the flow table; 0 means no cap.
	MaxFlows int
	// Service and Metrics are the route's service (access log) and
	// counters; a flow keeps those it was opened with.
	Service string
	Metrics *UDPMetrics
}

// Update replaces the settings new flows are opened with. Open flows keep
// their backend (and so their pool) until they end; CloseFlowsOf ends
// those a reload took away.
func (s *UDPServer) Update(l UDPLive) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Route, s.Pool, s.ProxyProtocol, s.IdleTimeout, s.MaxFlows = l.Route, l.Pool, l.ProxyProtocol, l.IdleTimeout, l.MaxFlows
	s.Service, s.Metrics = l.Service, l.Metrics
	s.live.Store(l.Metrics)
	s.updated.Store(true)
}

// metrics is the current route's counters, for datagrams not yet tied to a
// flow. Before any Update it is the Metrics field.
func (s *UDPServer) metrics() *UDPMetrics {
	if s.updated.Load() {
		return s.live.Load()
	}
	return s.Metrics
}

// CloseFlowsOf closes the open flows whose backend is from p and reports
// how many it closed. The socket stays open: the clients of closed flows
// start a new flow, with the current settings, on their next datagram.
func (s *UDPServer) CloseFlowsOf(p *upstream.Pool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, f := range s.flows {
		if f.pool == p {
			s.remove(f)
			n++
		}
	}
	return n
}

// FlowsOf is the number of open flows whose backend is from p.
func (s *UDPServer) FlowsOf(p *upstream.Pool) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, f := range s.flows {
		if f.pool == p {
			n++
		}
	}
	return n
}
