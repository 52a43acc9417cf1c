package l7

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// h1Server serves HTTP/1.x connections itself and gives HTTP/2 ones (TLS
// with ALPN h2, and plaintext that starts with the prior-knowledge preface)
// to the HTTP/2 server (h2server.go).
//
// Why not net/http for HTTP/1 too: per request it starts a goroutine that
// reads one byte in the background, allocates a context, a response and a
// header parser's state, and wakes that goroutine again at the end; at proxy
// rates that machinery costs more CPU than the proxying. This server runs a
// connection's requests on one goroutine with pooled buffers, parses a head
// into one string, and watches for the client going away only when a
// request runs long (h1s_conn.go). Its behaviour at the edges follows
// net/http's (see h1s_writer.go) and its input is the request-hygiene
// guard's, so nothing malformed reaches the parser.
type h1Server struct {
	handler           http.Handler
	readHeaderTimeout time.Duration
	idleTimeout       time.Duration
	writeTimeout      time.Duration
	maxHead           int
	log               *slog.Logger
	h2                *h2Server

	shutdown atomic.Bool
	workers  connWorkers // the goroutines serveConn runs on
	mu       sync.Mutex
	conns    map[*h1conn]struct{}
	closed   bool
}

// ownRequestKey marks the context of a request this server made: the
// entry handler may then set the request's context in place instead of
// copying the request (setRequestContext), as nothing else holds it.
type ownRequestKey struct{}

func (s *h1Server) shuttingDown() bool { return s.shutdown.Load() }

// serveConn serves one guarded connection until it ends; tlsState is set
// for a terminated TLS connection.
func (s *h1Server) serveConn(nc net.Conn, tlsState *tls.ConnectionState) {
	c := &h1conn{s: s, nc: nc, tls: tlsState}
	c.bareLF = &c.noLF
	switch g := nc.(type) {
	case *guardConn:
		c.bareLF = &g.s.bareLF
	case *guardTLSConn:
		c.bareLF = &g.s.bareLF
	}
	if a := nc.RemoteAddr(); a != nil {
		c.remote = a.String()
		if ap, err := netip.ParseAddrPort(c.remote); err == nil {
			c.peer = ap.Addr().Unmap()
		}
	}
	c.ctx = context.WithValue(context.WithValue(context.Background(), http.LocalAddrContextKey, nc.LocalAddr()), ownRequestKey{}, true)
	if !s.track(c) {
		nc.Close()
		return
	}
	c.serve()
}

func (s *h1Server) track(c *h1conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*h1conn]struct{})
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *h1Server) forget(c *h1conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// closeIdle closes the connections waiting for a request and reports how
// many remain (busy).
func (s *h1Server) closeIdle() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if c.state.CompareAndSwap(connIdle, connClosed) {
			c.nc.Close()
			continue
		}
		n++
	}
	return n
}

// closeAll closes every connection, busy or not, and refuses new ones.
func (s *h1Server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c := range s.conns {
		if c.state.Swap(connClosed) == connHijacked {
			c.state.Store(connHijacked)
			continue
		}
		c.nc.Close()
	}
}

// acceptLoop accepts from ln until it fails: h2 connections go to the
// queue, the rest to serveConn. It backs off on temporary errors as
// net/http does.
func (s *h1Server) acceptLoop(ln net.Listener, g *GuardedListener) error {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.shuttingDown() || errors.Is(err, net.ErrClosed) {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("accept error; retrying", "error", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		gc := g.Guard(c)
		if _, ok := gc.(*tls.Conn); ok {
			// Guard leaves a TLS connection that negotiated h2 alone:
			// HTTP/2 has its own framing, checked by the HTTP/2 server (h2s_conn.go).
			go s.h2.serve(gc)
			continue
		}
		s.workers.serve(s, gc, TLSState(gc))
	}
}
