package l7

import (
	"context"
	"log"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ServerOptions configure the HTTP server of one entrypoint.
type ServerOptions struct {
	Entrypoint string
	Handler    http.Handler
	// ReadHeaderTimeout bounds reading a request's headers; IdleTimeout
	// closes keep-alive connections idle this long; WriteTimeout (0: none)
	// bounds writing a whole response.
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	WriteTimeout      time.Duration
	// MaxHeaderBytes bounds a request's header block (431 beyond).
	MaxHeaderBytes int
	// MaxConcurrentStreams is HTTP/2's per-connection stream limit.
	MaxConcurrentStreams int
	// ParkIdleAfter, when positive, hands a plaintext HTTP/1 connection
	// idle this long between requests back to its owner, if the connection
	// implements IdleParker (see GuardOptions.ParkAfter).
	ParkIdleAfter time.Duration
	Logger        *slog.Logger
	// ResetCloses counts the HTTP/2 connections closed for cancelling
	// more streams than their rapid-reset budget allows (h2reset.go);
	// nil counts nothing. Metrics.RapidResetCloses makes it.
	ResetCloses prometheus.Counter
	// GuardRejections counts the HTTP/1 connections the request hygiene
	// guard answered 400 and closed (nil: not counted);
	// Metrics.GuardRejections makes it.
	GuardRejections prometheus.Counter
}

// Server serves HTTP/1.1, HTTP/2 over TLS (by ALPN, on *tls.Conn
// connections) and HTTP/2 with prior knowledge (h2c) on plaintext
// connections. An h2c Upgrade from HTTP/1.1 is never honoured.
type Server struct {
	h1        *h1Server // HTTP/1.x; hands HTTP/2 to its h2Server
	maxHead   int
	parkAfter time.Duration
	rejected  prometheus.Counter              // GuardOptions.Rejections
	guard     atomic.Pointer[GuardedListener] // set by Serve, for GuardViolations

	mu      sync.Mutex
	lns     []net.Listener
	stopped bool
}

// NewServer builds the server; Serve runs it.
func NewServer(o ServerOptions) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	epLog := o.Logger.With("entrypoint", o.Entrypoint)
	// The HTTP/2 server's settings; this server itself is never served.
	srv := &http.Server{
		Handler:           o.Handler,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		IdleTimeout:       o.IdleTimeout,
		WriteTimeout:      o.WriteTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: o.MaxConcurrentStreams,
			MaxReadFrameSize:     1 << 20,
		},
		ErrorLog: log.New(slogWriter{epLog}, "", 0),
	}
	maxHeader := o.MaxHeaderBytes
	if maxHeader <= 0 {
		maxHeader = http.DefaultMaxHeaderBytes
	}
	h1 := &h1Server{
		handler:           o.Handler,
		readHeaderTimeout: o.ReadHeaderTimeout,
		idleTimeout:       o.IdleTimeout,
		writeTimeout:      o.WriteTimeout,
		maxHead:           maxHeader + 4096, // net/http's slack, for the request line
		log:               epLog,
		h2:                newH2Server(srv, epLog, o.ResetCloses),
	}
	// The guard holds a request head until it is whole; it must allow more
	// than the server so that the server, not the guard, answers 431.
	h1.h2.workers, h1.h2.h1 = &h1.workers, h1
	return &Server{h1: h1, maxHead: max(DefaultGuardMaxHead, o.MaxHeaderBytes+8192), parkAfter: o.ParkIdleAfter, rejected: o.GuardRejections}
}

// Serve accepts connections from ln until Shutdown or Close; it returns
// http.ErrServerClosed then. HTTP/1 connections go through the request
// hygiene guard (GuardListener): a malformed or ambiguous request gets 400
// and its connection is closed before net/http sees it.
func (s *Server) Serve(ln net.Listener) error {
	g := NewGuardListener(ln, GuardOptions{MaxHead: s.maxHead, ParkAfter: s.parkAfter, HeadTimeout: s.h1.readHeaderTimeout, Rejections: s.rejected})
	s.guard.Store(g)
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
	return s.h1.acceptLoop(ln, g)
}

// stop refuses new connections: listeners closed, HTTP/1 responses from
// now on say Connection: close.
func (s *Server) stop() {
	s.h1.shutdown.Store(true)
	s.h1.workers.close()
	s.mu.Lock()
	s.stopped = true
	lns := s.lns
	s.lns = nil
	s.mu.Unlock()
	for _, ln := range lns {
		ln.Close()
	}
}

// Shutdown stops accepting, closes idle connections, sends HTTP/2 GOAWAY,
// and waits for in-flight requests until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stop()
	h2 := make(chan error, 1)
	go func() { h2 <- s.h1.h2.shutdown(ctx) }()
	poll := time.Millisecond
	t := time.NewTimer(poll)
	defer t.Stop()
	for s.h1.closeIdle() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			poll = min(2*poll, 100*time.Millisecond)
			t.Reset(poll)
		}
	}
	return <-h2
}

// GuardViolations counts the connections the request hygiene guard
// answered 400 and closed.
func (s *Server) GuardViolations() uint64 {
	if g := s.guard.Load(); g != nil {
		return g.Violations()
	}
	return 0
}

// Close closes every connection at once.
func (s *Server) Close() error {
	s.stop()
	s.h1.closeAll()
	s.h1.h2.closeAll()
	return nil
}
