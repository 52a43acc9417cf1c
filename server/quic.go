package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"

	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/l7"
	"github.com/proxynow/proxynow/quic"
)

// quicSide is the HTTP/3 side of a TCP listener whose entrypoint has
// http3 = true: a QUIC server on the UDP port with the TCP port's number,
// serving the same l7 handler. Like the TCP socket it outlives
// generations: a reload swaps its handler and its quic_routes; the QUIC
// server's own settings (the http3 block, timeouts) are fixed while it
// runs, and a reload that changes them logs that they take effect on
// restart.
type quicSide struct {
	settings string // the http3 settings and timeouts it was built with
	srv      *quic.Server
	handler  liveHTTP
	pc       *net.UDPConn
	port     int         // advertised in Alt-Svc
	demux    *quic.Demux // nil when the entrypoint had no quic_route at start
	dm       *quic.DemuxMetrics
	started  bool
}

// quicSettings is what fixes a QUIC server.
func quicSettings(ep *config.Entrypoint) string {
	b, _ := json.Marshal(struct {
		H3              *config.HTTP3Settings
		Handshake, Idle int64
		MaxHeaderBytes  int
	}{ep.HTTP3, int64(ep.Timeouts.Handshake), int64(ep.Timeouts.Idle), ep.HTTP.MaxHeaderBytes})
	return string(b)
}

// buildQUIC fills in p's HTTP/3 side: the listener's, kept, or a new one
// (bound with the listener or, on a kept listener, by bindQUIC).
func (g *generation) buildQUIC(p *epPlan) error {
	ep := p.cfg
	if ep.HTTP3 == nil {
		return nil
	}
	var routes []quic.PassRoute
	for i := range g.cfg.QUICRoutes {
		r := &g.cfg.QUICRoutes[i]
		if slices.Contains(r.Entrypoints, ep.Name) {
			routes = append(routes, quic.PassRoute{Name: r.Name, SNI: r.SNI, Pool: g.services[r.Service].pool})
		}
	}
	p.quicRoutes = routes
	if old := p.ln.quic; old != nil {
		if old.settings != quicSettings(ep) {
			g.s.log.Warn("reload: the HTTP/3 settings of an entrypoint take effect on restart", "entrypoint", ep.Name)
		}
		if old.demux == nil && len(routes) > 0 {
			return fmt.Errorf("quic_routes added to an entrypoint that had none at start: restart to apply them")
		}
		p.quic = old
		return nil
	}
	s := g.s
	q := &quicSide{settings: quicSettings(ep)}
	q.srv = quic.NewServer(quic.ServerOptions{
		Entrypoint: ep.Name,
		// A stream left without flow-control credit ends after idle.
		Handler: l7.WriteStallHandler(&q.handler, ep.Timeouts.Idle),
		// The certificates of the generation serving now.
		GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if c := s.cur.Load().certs; c != nil {
				return c.GetCertificate(h)
			}
			return nil, errors.New("no certificate configured")
		},
		HandshakeTimeout:   ep.Timeouts.Handshake,
		IdleTimeout:        ep.Timeouts.Idle,
		MaxIncomingStreams: ep.HTTP3.MaxIncomingStreams,
		MaxHeaderBytes:     ep.HTTP.MaxHeaderBytes,
		RetryThreshold:     ep.HTTP3.RetryThreshold,
		Allow0RTT:          ep.HTTP3.Allow0RTT,
		Logger:             s.log,
		ResetCloses:        s.metrics.HTTP.RapidResetCloses(ep.Name, "HTTP/3"),
	})
	p.quic = q
	return nil
}

// bindQUIC binds the UDP port with the number of the listener's bound TCP
// port, once; with quic_routes a demultiplexer owns the socket.
func (l *listener) bindQUIC(p *epPlan, s *Server) error {
	q := p.quic
	if q == nil || q.pc != nil {
		return nil
	}
	tcp := l.addr.(*net.TCPAddr)
	lc := net.ListenConfig{}
	pc, err := lc.ListenPacket(context.Background(), "udp", net.JoinHostPort(hostOf(l.key.address), strconv.Itoa(tcp.Port)))
	if err != nil {
		return fmt.Errorf("http3: %w", err)
	}
	q.pc = pc.(*net.UDPConn)
	// Without quic_routes quic-go gets the socket itself, which keeps GSO,
	// ECN and path MTU discovery; with them the demultiplexer reads it and
	// hands quic-go the datagrams no route claims.
	if len(p.quicRoutes) > 0 {
		d, err := quic.NewDemux(q.pc, p.quicRoutes, quic.DemuxOptions{Entrypoint: p.cfg.Name, Logger: s.log, AccessLog: &s.accessLog})
		if err != nil {
			q.pc.Close()
			q.pc = nil
			return fmt.Errorf("http3: %w", err)
		}
		q.demux = d
	}
	q.port = p.cfg.HTTP3.AdvertisedPort
	if q.port == 0 {
		q.port = tcp.Port
	}
	return nil
}

// unbindQUIC closes a socket bindQUIC opened for a reload that failed.
func (q *quicSide) unbind() {
	if q != nil && q.pc != nil && !q.started {
		q.pc.Close()
		q.pc = nil
		q.demux = nil
	}
}

// serve starts the QUIC server (and the demultiplexer) on the bound socket.
func (q *quicSide) serve(s *Server, l *listener) {
	q.started = true
	var local net.PacketConn = q.pc
	if q.demux != nil {
		// Without quic_routes quic-go gets the socket itself, which keeps
		// GSO, ECN and path MTU discovery; with them the demultiplexer reads
		// it and hands quic-go the datagrams no route claims.
		local = q.demux.Local()
		q.dm = s.metrics.QUIC
		q.dm.Add(q.demux)
		s.goServe(l.entrypoint, q.demux.Serve)
	}
	s.goServe(l.entrypoint, func() error { return q.srv.Serve(local) })
	s.log.Info("listening", "entrypoint", l.entrypoint(), "network", config.NetworkUDP, "address", q.pc.LocalAddr().String(), "protocol", "http3")
}

// wrap is the TCP side's handler: the entry with Alt-Svc advertising
// HTTP/3 on q's port.
func (q *quicSide) wrap(entry http.Handler) http.Handler { return l7.AltSvc(q.port, entry) }

// hostOf is the host part of a configured address ("" for ":8443").
func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return h
}

// shutdown sends GOAWAY on every HTTP/3 connection and waits for their
// requests until ctx is done.
func (q *quicSide) shutdown(ctx context.Context) error {
	if q == nil || q.pc == nil {
		return nil
	}
	err := q.srv.Shutdown(ctx)
	if q.demux != nil {
		q.dm.Remove(q.demux)
		// After the HTTP/3 connections (their GOAWAY and last packets go
		// through the demultiplexer): passthrough flows drain, then the
		// socket closes.
		return errors.Join(err, q.demux.Shutdown(ctx))
	}
	return errors.Join(err, q.pc.Close())
}

func (q *quicSide) close() {
	if q == nil || q.pc == nil {
		return
	}
	q.srv.Close()
	if q.demux != nil {
		q.dm.Remove(q.demux)
		q.demux.Close()
	}
	q.pc.Close()
}
