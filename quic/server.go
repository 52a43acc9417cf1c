package quic

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	quicgo "github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// ServerOptions configure the HTTP/3 server of one entrypoint.
type ServerOptions struct {
	Entrypoint string
	// Handler serves every request; the server package gives it the same
	// l7 handler as the entrypoint's HTTP/1.1 and HTTP/2 server.
	Handler http.Handler
	// GetCertificate picks the certificate per handshake (by SNI); it is
	// called for every handshake, so renewed certificates apply at once.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// HandshakeTimeout bounds a QUIC handshake; IdleTimeout closes a
	// connection idle this long (QUIC's max_idle_timeout). Zero values
	// take quic-go's defaults (5s and 30s).
	HandshakeTimeout time.Duration
	IdleTimeout      time.Duration
	// MaxIncomingStreams bounds concurrent requests per connection
	// (QUIC's initial_max_streams_bidi). Default 100.
	MaxIncomingStreams int
	// MaxHeaderBytes bounds a request's header block; larger ones get
	// 431. Default net/http's 1 MiB.
	MaxHeaderBytes int
	// RetryThreshold is the number of handshakes in progress from which
	// new clients must prove their address with a Retry round trip
	// (RFC 9000 §8.1.2) before the server spends more than 3× their bytes
	// on them. 0 asks every client to.
	RetryThreshold int
	// Allow0RTT accepts early data from resuming clients. The handler
	// must then refuse what is not replay-safe (l7.EarlyData does).
	Allow0RTT bool
	Logger    *slog.Logger
	// ResetCloses counts the connections closed with H3_EXCESSIVE_LOAD
	// for cancelling more requests than their rapid-reset budget allows
	// (reset.go); nil counts nothing.
	ResetCloses prometheus.Counter
}

// Server is an HTTP/3 server over one UDP socket. It has net/http's
// shape: Serve, Shutdown, Close.
type Server struct {
	o   ServerOptions
	log *slog.Logger
	h3  *http3.Server
	hs  handshakes

	mu     sync.Mutex
	tr     *quicgo.Transport
	ln     *quicgo.EarlyListener
	closed bool
}

// DefaultMaxIncomingStreams is MaxIncomingStreams' default.
const DefaultMaxIncomingStreams = 100

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = http.ErrServerClosed

// NewServer builds the server; Serve runs it.
func NewServer(o ServerOptions) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxIncomingStreams <= 0 {
		o.MaxIncomingStreams = DefaultMaxIncomingStreams
	}
	log := o.Logger.With("entrypoint", o.Entrypoint)
	s := &Server{o: o, log: log}
	s.h3 = &http3.Server{
		Handler:        resetBudget(o.Handler, log, o.ResetCloses),
		MaxHeaderBytes: o.MaxHeaderBytes,
		IdleTimeout:    o.IdleTimeout,
		Logger:         log,
		ConnContext:    resetsContext,
	}
	return s
}

// Serve runs HTTP/3 on pc until Shutdown or Close, then returns
// ErrServerClosed. pc is a *net.UDPConn (GSO, ECN and batched reads are
// then used) or any net.PacketConn, such as a demultiplexer's local side.
// Serve does not close pc; its caller does, after Shutdown or Close.
func (s *Server) Serve(pc net.PacketConn) error {
	checkBuffers(pc, s.log)
	tr := &quicgo.Transport{
		Conn:                pc,
		VerifySourceAddress: s.hs.mustVerify(s.o.RetryThreshold),
		ConnContext:         s.hs.connContext,
	}
	tlsConf := http3.ConfigureTLSConfig(&tls.Config{
		MinVersion: tls.VersionTLS13,
		// GetConfigForClient, not GetCertificate alone: each handshake gets
		// a config whose VerifyConnection ends its count as in progress.
		GetConfigForClient: s.hs.configFor(s.o.GetCertificate),
	})
	qconf := &quicgo.Config{
		HandshakeIdleTimeout: s.o.HandshakeTimeout,
		MaxIdleTimeout:       s.o.IdleTimeout,
		MaxIncomingStreams:   int64(s.o.MaxIncomingStreams),
		Allow0RTT:            s.o.Allow0RTT,
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	ln, err := tr.ListenEarly(tlsConf, qconf)
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("quic listen: %w", err)
	}
	s.tr, s.ln = tr, ln
	s.mu.Unlock()
	err = s.h3.ServeListener(ln)
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, quicgo.ErrServerClosed) || errors.Is(err, quicgo.ErrTransportClosed) {
		return ErrServerClosed
	}
	return err
}

// Shutdown stops accepting connections, sends GOAWAY on every connection
// and waits until their requests have finished or ctx is done; then it
// closes them all. It returns when Serve's goroutines have ended.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.h3.Shutdown(ctx)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return errors.Join(err, s.closeTransport())
}

// Close closes every connection at once.
func (s *Server) Close() error {
	err := s.h3.Close()
	return errors.Join(err, s.closeTransport())
}

func (s *Server) closeTransport() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	if s.tr != nil {
		// quic-go's Transport does not close a Conn it was given.
		err = errors.Join(err, s.tr.Close())
	}
	if errors.Is(err, quicgo.ErrServerClosed) || errors.Is(err, quicgo.ErrTransportClosed) {
		err = nil
	}
	return err
}

// HandshakesInProgress is the number of QUIC handshakes begun and not yet
// completed or abandoned.
func (s *Server) HandshakesInProgress() int64 { return s.hs.n.Load() }

// handshakes counts handshakes in progress, for address validation: a
// flood of spoofed Initials leaves handshakes that never complete, and
// past the threshold new clients must echo a Retry token first.
type handshakes struct{ n atomic.Int64 }

type hsKey struct{}

// hsTrack is one connection's handshake; done ends its count once.
type hsTrack struct {
	n    *atomic.Int64
	once sync.Once
}

func (t *hsTrack) done() { t.once.Do(func() { t.n.Add(-1) }) }

// connContext counts a new connection's handshake until it completes
// (VerifyConnection) or the connection ends (handshake failure, timeout).
func (h *handshakes) connContext(ctx context.Context, _ *quicgo.ClientInfo) (context.Context, error) {
	t := &hsTrack{n: &h.n}
	h.n.Add(1)
	context.AfterFunc(ctx, t.done)
	return context.WithValue(ctx, hsKey{}, t), nil
}

func (h *handshakes) mustVerify(threshold int) func(net.Addr) bool {
	return func(net.Addr) bool { return h.n.Load() >= int64(threshold) }
}

// configFor returns the per-handshake TLS config: certificate by SNI,
// TLS 1.3 (QUIC has no other), and a VerifyConnection that marks the
// handshake complete. crypto/tls calls VerifyConnection on every server
// handshake, full or resumed, once the client's Finished is verified.
func (h *handshakes) configFor(getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) func(*tls.ClientHelloInfo) (*tls.Config, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		c := &tls.Config{MinVersion: tls.VersionTLS13, GetCertificate: getCert}
		if t, ok := hello.Context().Value(hsKey{}).(*hsTrack); ok {
			c.VerifyConnection = func(tls.ConnectionState) error { t.done(); return nil }
		}
		return c, nil
	}
}
