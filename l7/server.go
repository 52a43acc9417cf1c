package l7

import (
	"context"
	"log"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"
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
}

// Server serves HTTP/1.1, HTTP/2 over TLS (by ALPN, on *tls.Conn
// connections) and HTTP/2 with prior knowledge (h2c) on plaintext
// connections. An h2c Upgrade from HTTP/1.1 is never honoured.
type Server struct {
	srv       *http.Server
	maxHead   int
	parkAfter time.Duration
	guard     atomic.Pointer[GuardedListener] // set by Serve, for GuardViolations
}

// NewServer builds the server; Serve runs it.
func NewServer(o ServerOptions) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler:           o.Handler,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		IdleTimeout:       o.IdleTimeout,
		WriteTimeout:      o.WriteTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
		Protocols:         &protos,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: o.MaxConcurrentStreams,
			MaxReadFrameSize:     1 << 20,
		},
		ErrorLog: log.New(slogWriter{o.Logger.With("entrypoint", o.Entrypoint)}, "", 0),
	}
	// The guard holds a request head until it is whole; it must allow more
	// than net/http so that net/http, not the guard, answers 431.
	return &Server{srv: srv, maxHead: max(DefaultGuardMaxHead, o.MaxHeaderBytes+8192), parkAfter: o.ParkIdleAfter}
}

// Serve accepts connections from ln until Shutdown or Close; it returns
// http.ErrServerClosed then. HTTP/1 connections go through the request
// hygiene guard (GuardListener): a malformed or ambiguous request gets 400
// and its connection is closed before net/http sees it.
func (s *Server) Serve(ln net.Listener) error {
	g := NewGuardListener(ln, GuardOptions{MaxHead: s.maxHead, ParkAfter: s.parkAfter})
	s.guard.Store(g)
	return s.srv.Serve(g)
}

// Shutdown stops accepting, closes idle connections, sends HTTP/2 GOAWAY,
// and waits for in-flight requests until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// GuardViolations counts the connections the request hygiene guard
// answered 400 and closed.
func (s *Server) GuardViolations() uint64 {
	if g := s.guard.Load(); g != nil {
		return g.Violations()
	}
	return 0
}

// Close closes every connection at once.
func (s *Server) Close() error { return s.srv.Close() }
