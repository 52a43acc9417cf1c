package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/l7"
	"github.com/proxynow/proxynow/quic"
)

// quicEntry is the HTTP/3 side of an entrypoint with http3 = true: a QUIC
// server on the UDP port with the TCP port's number, serving the same l7
// handler.
type quicEntry struct {
	cfg   *config.HTTP3Settings
	srv   *quic.Server
	entry http.Handler // the l7 handler shared with HTTP/1.1 and HTTP/2
	// tcp is the handler of the TCP side: the l7 handler with Alt-Svc,
	// set once the advertised port is known (the bound port by default).
	tcp lateHandler
	pc  *net.UDPConn // set by listen
	// routes are the entrypoint's quic_routes; with any, demux owns pc
	// and the HTTP/3 server reads demux.Local() (set by listen).
	routes []quic.PassRoute
	demux  *quic.Demux
}

// lateHandler is an http.Handler fixed after construction: the TCP
// server is built before Start binds and learns its port.
type lateHandler struct{ h atomic.Pointer[http.Handler] }

func (l *lateHandler) set(h http.Handler) { l.h.Store(&h) }

func (l *lateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*l.h.Load()).ServeHTTP(w, r)
}

// httpHandler returns the handler of the entrypoint's TCP HTTP server and
// builds its HTTP/3 server when http3 is on.
func (s *Server) httpHandler(ep *config.Entrypoint, h *httpEntry, entry http.Handler) http.Handler {
	if ep.HTTP3 == nil {
		return entry
	}
	q := &quicEntry{cfg: ep.HTTP3, entry: entry}
	q.tcp.set(entry) // no Alt-Svc until HTTP/3 listens
	q.srv = quic.NewServer(quic.ServerOptions{
		Entrypoint: ep.Name,
		// Early data is refused unless allowed, so the guard only acts with
		// allow_0rtt; it stays on as a second line of defence.
		Handler:            l7.EarlyData(entry),
		GetCertificate:     s.certs.GetCertificate,
		HandshakeTimeout:   ep.Timeouts.Handshake,
		IdleTimeout:        ep.Timeouts.Idle,
		MaxIncomingStreams: ep.HTTP3.MaxIncomingStreams,
		MaxHeaderBytes:     ep.HTTP.MaxHeaderBytes,
		RetryThreshold:     ep.HTTP3.RetryThreshold,
		Allow0RTT:          ep.HTTP3.Allow0RTT,
		Logger:             s.log,
	})
	for i := range s.cfg.QUICRoutes {
		r := &s.cfg.QUICRoutes[i]
		if slices.Contains(r.Entrypoints, ep.Name) {
			q.routes = append(q.routes, quic.PassRoute{Name: r.Name, SNI: r.SNI, Pool: s.pools[r.Service]})
		}
	}
	h.quic = q
	return &q.tcp
}

// listenQUIC binds the UDP port with the number of the entrypoint's bound
// TCP address and starts HTTP/3 on it.
func (s *Server) listenQUIC(e *entrypoint, lc *net.ListenConfig) error {
	q := e.http.quic
	tcp := e.addr.(*net.TCPAddr)
	pc, err := lc.ListenPacket(context.Background(), "udp", net.JoinHostPort(hostOf(e.cfg.Address), strconv.Itoa(tcp.Port)))
	if err != nil {
		return fmt.Errorf("http3: %w", err)
	}
	q.pc = pc.(*net.UDPConn)
	// Without quic_routes quic-go gets the socket itself, which keeps GSO,
	// ECN and path MTU discovery; with them the demultiplexer reads it and
	// hands quic-go the datagrams no route claims.
	var local net.PacketConn = q.pc
	if len(q.routes) > 0 {
		d, err := quic.NewDemux(q.pc, q.routes, quic.DemuxOptions{Entrypoint: e.cfg.Name, Logger: s.log, AccessLog: s.accessLog})
		if err != nil {
			q.pc.Close()
			return fmt.Errorf("http3: %w", err)
		}
		q.demux = d
		s.metrics.QUIC.Add(d)
		local = d.Local()
		s.serve(e, d.Serve)
	}
	port := q.cfg.AdvertisedPort
	if port == 0 {
		port = tcp.Port
	}
	q.tcp.set(l7.AltSvc(port, q.entry))
	s.serve(e, func() error { return q.srv.Serve(local) })
	s.log.Info("listening", "entrypoint", e.cfg.Name, "network", config.NetworkUDP, "address", q.pc.LocalAddr().String(), "protocol", "http3")
	return nil
}

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
func (q *quicEntry) shutdown(ctx context.Context) error {
	if q == nil || q.pc == nil {
		return nil
	}
	err := q.srv.Shutdown(ctx)
	if q.demux != nil {
		// After the HTTP/3 connections (their GOAWAY and last packets go
		// through the demultiplexer): passthrough flows drain, then the
		// socket closes.
		return errors.Join(err, q.demux.Shutdown(ctx))
	}
	return errors.Join(err, q.pc.Close())
}

func (q *quicEntry) close() {
	if q == nil || q.pc == nil {
		return
	}
	q.srv.Close()
	if q.demux != nil {
		q.demux.Close()
	}
	q.pc.Close()
}
