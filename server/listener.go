package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/l4"
	"github.com/proxynow/proxynow/l7"
)

// listenerKey identifies a socket across reloads: an entrypoint whose
// network and address (as written) are unchanged keeps its socket, even
// when it was renamed. Port 0 binds a fresh port each time, so there the
// name is part of the key too.
type listenerKey struct {
	network string
	address string
	name    string // only for port 0
}

func keyOf(ep *config.Entrypoint) listenerKey {
	k := listenerKey{network: ep.Network, address: ep.Address}
	if k.network == "" {
		k.network = config.NetworkTCP
	}
	if strings.HasSuffix(ep.Address, ":0") {
		k.name = ep.Name
	}
	return k
}

// listener is one bound socket and the l4 server on it. It lives as long
// as some generation's entrypoint has its key; what it does with each
// connection (handler, PROXY protocol, limits) is replaced on reload
// through the l4 servers' Update, which leaves the socket alone, so no
// connection is refused and no datagram lost while a reload swaps.
type listener struct {
	key  listenerKey
	name atomic.Pointer[string] // current entrypoint name, for logs and Addr
	addr net.Addr               // bound address, set by bind

	tcpLn *net.TCPListener
	udpPC *net.UDPConn
	tcp   *l4.TCPServer
	udp   *l4.UDPServer

	// http is the HTTP server connections are handed to; nil when the
	// entrypoint has no http_routes. A reload that changes the HTTP server
	// settings (timeouts, header limits) starts a new one here and shuts
	// the old one down gracefully.
	http atomic.Pointer[httpServer]
	// quic is the HTTP/3 side, nil without http3; changed under Server.mu.
	quic *quicSide
	// parked are the idle HTTP/1 connections handoff holds (park.go).
	parked parkedConns

	served chan struct{} // closed when the l4 Serve loop has returned
}

func newListener(k listenerKey, ep *config.Entrypoint, s *Server) *listener {
	l := &listener{key: k, served: make(chan struct{})}
	l.name.Store(&ep.Name)
	l.parked.log = s.log
	// Metrics are per entrypoint name; a renamed entrypoint keeping its
	// socket keeps counting under its first name until restart.
	if k.network == config.NetworkUDP {
		l.udp = &l4.UDPServer{Entrypoint: ep.Name, Logger: s.log, AccessLog: &s.accessLog}
	} else {
		l.tcp = &l4.TCPServer{Entrypoint: ep.Name, Logger: s.log, Metrics: s.metrics.L4.Entrypoint(ep.Name)}
	}
	return l
}

func (l *listener) entrypoint() string { return *l.name.Load() }

// bind opens the socket.
func (l *listener) bind() error {
	lc := listenConfig()
	if l.udp != nil {
		pc, err := lc.ListenPacket(context.Background(), "udp", l.key.address)
		if err != nil {
			return err
		}
		l.udpPC = pc.(*net.UDPConn)
		l.addr = pc.LocalAddr()
		return nil
	}
	ln, err := lc.Listen(context.Background(), "tcp", l.key.address)
	if err != nil {
		return err
	}
	l.tcpLn = ln.(*net.TCPListener)
	l.addr = ln.Addr()
	return nil
}

// unbind closes a socket that bind opened but that never served (a reload
// that failed after binding).
func (l *listener) unbind() {
	if l.tcpLn != nil {
		l.tcpLn.Close()
	}
	if l.udpPC != nil {
		l.udpPC.Close()
	}
}

// serve starts the l4 loop.
func (l *listener) serve(s *Server) {
	s.goServe(l.entrypoint, func() error {
		defer close(l.served)
		if l.udp != nil {
			return l.udp.Serve(l.udpPC)
		}
		return l.tcp.Serve(l.tcpLn)
	})
}

func (l *listener) network() string { return l.key.network }

// shutdown stops accepting (at once: serve has returned when the first
// phase ends, so the address can be bound again), then waits for open
// connections and flows until ctx is done and closes those left; the HTTP
// server's in-flight requests finish first.
func (l *listener) shutdown(ctx context.Context) error {
	if l.udp != nil {
		return l.udp.Shutdown(ctx)
	}
	// HTTP/3 and the HTTP server let their requests finish while l4 waits
	// for the connections the HTTP server holds; idle ones close now.
	l.parked.closeAll()
	hs := l.http.Load()
	var quicErr, httpErr error
	var wg sync.WaitGroup
	wg.Go(func() { quicErr = l.quic.shutdown(ctx) })
	if hs != nil {
		wg.Go(func() { httpErr = hs.shutdown(ctx) })
	}
	err := l.tcp.Shutdown(ctx)
	wg.Wait()
	return errors.Join(err, httpErr, quicErr)
}

func (l *listener) close() {
	if l.udp != nil {
		l.udp.Close()
		return
	}
	l.parked.closeAll()
	if hs := l.http.Load(); hs != nil {
		hs.close()
	}
	l.quic.close()
	l.tcp.Close()
}

// httpServer is an entrypoint's HTTP server and the listener l4 pushes
// connections into. Its handler is swapped on reload; its settings are
// fixed, so a reload that changes them makes another httpServer.
type httpServer struct {
	ln       *l7.ConnQueue // l4 pushes connections into it, plaintext as the *l4.Conn and terminated TLS as the *tls.Conn
	srv      *l7.Server
	settings httpSettings
	handler  liveHTTP
	started  bool
}

// httpSettings are the parts of an entrypoint fixed in an http.Server.
type httpSettings struct {
	readHeader, idle, write int64
	maxHeader, maxStreams   int
}

func settingsOf(ep *config.Entrypoint) httpSettings {
	return httpSettings{
		readHeader: int64(ep.Timeouts.ReadHeader), idle: int64(ep.Timeouts.Idle), write: int64(ep.HTTP.WriteTimeout),
		maxHeader: ep.HTTP.MaxHeaderBytes, maxStreams: ep.HTTP.MaxConcurrentStreams,
	}
}

func newHTTPServer(ep *config.Entrypoint, s *Server) *httpServer {
	h := &httpServer{ln: l7.NewConnQueue(), settings: settingsOf(ep)}
	h.srv = l7.NewServer(l7.ServerOptions{
		Entrypoint:           ep.Name,
		Handler:              &h.handler,
		ReadHeaderTimeout:    ep.Timeouts.ReadHeader,
		IdleTimeout:          ep.Timeouts.Idle,
		WriteTimeout:         ep.HTTP.WriteTimeout,
		MaxHeaderBytes:       ep.HTTP.MaxHeaderBytes,
		MaxConcurrentStreams: ep.HTTP.MaxConcurrentStreams,
		ParkIdleAfter:        httpParkAfter,
		Logger:               s.log,
		ResetCloses:          s.metrics.HTTP.RapidResetCloses(ep.Name, "HTTP/2"),
		GuardRejections:      s.metrics.HTTP.GuardRejections(ep.Name),
	})
	return h
}

func (h *httpServer) serve(s *Server, l *listener) {
	h.ln.Address = l.addr
	h.started = true
	s.goServe(l.entrypoint, func() error { return h.srv.Serve(h.ln) })
}

// shutdown closes idle keep-alive connections, sends HTTP/2 GOAWAY and
// lets requests in flight finish until ctx is done.
func (h *httpServer) shutdown(ctx context.Context) error {
	err := h.srv.Shutdown(ctx)
	h.srv.Close()
	h.ln.Close()
	return err
}

func (h *httpServer) close() {
	h.srv.Close()
	h.ln.Close()
}

// liveHTTP is the handler of an httpServer: the current generation's
// entry handler, read once per request without a lock.
type liveHTTP struct{ h atomic.Pointer[http.Handler] }

func (l *liveHTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) { (*l.h.Load()).ServeHTTP(w, r) }

func (l *liveHTTP) store(h http.Handler) { l.h.Store(&h) }
