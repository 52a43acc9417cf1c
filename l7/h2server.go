package l7

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/http2"
)

// h2Server serves the HTTP/2 connections the HTTP/1 server hands over (TLS
// that negotiated h2, plaintext that began with the prior-knowledge
// preface), each as an h2Conn over a batchConn.
type h2Server struct {
	handler       http.Handler
	log           *slog.Logger // the entrypoint's
	maxStreams    int          // SETTINGS_MAX_CONCURRENT_STREAMS
	maxReadFrame  uint32       // SETTINGS_MAX_FRAME_SIZE
	maxHeaderList uint32       // SETTINGS_MAX_HEADER_LIST_SIZE
	// idleTimeout closes a connection with no stream open that long; it
	// also bounds a stream's wait for credit, or for its request body
	// (h2Body.Read), and a write to the connection (batchConn). 0: none.
	idleTimeout       time.Duration
	writeTimeout      time.Duration // bounds a whole response; 0: none
	readHeaderTimeout time.Duration // bounds the wait for the client preface
	// resetCloses counts the connections closed for rapid reset (nil:
	// not counted).
	resetCloses prometheus.Counter
	// workers runs the handlers: the HTTP/1 server's goroutines, stacks
	// grown (connpool.go).
	workers *connWorkers
	h1      *h1Server // the workers' owner; nil in tests of this server alone

	mu      sync.Mutex
	conns   map[*h2Conn]struct{}
	stopped bool
	done    sync.WaitGroup // one per connection served
}

// newH2Server serves with base's handler, timeouts and HTTP2 settings.
// log and resetCloses report connections closed for rapid reset
// (h2reset.go).
func newH2Server(base *http.Server, log *slog.Logger, resetCloses prometheus.Counter) *h2Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &h2Server{
		handler:           base.Handler,
		log:               log,
		maxStreams:        250,
		maxReadFrame:      1 << 20,
		idleTimeout:       base.IdleTimeout,
		writeTimeout:      base.WriteTimeout,
		readHeaderTimeout: base.ReadHeaderTimeout,
		resetCloses:       resetCloses,
		workers:           new(connWorkers), // NewServer shares the HTTP/1 server's
		conns:             make(map[*h2Conn]struct{}),
	}
	if h := base.HTTP2; h != nil {
		if h.MaxConcurrentStreams > 0 {
			s.maxStreams = h.MaxConcurrentStreams
		}
		if h.MaxReadFrameSize > 0 {
			s.maxReadFrame = uint32(h.MaxReadFrameSize)
		}
	}
	// As x/net: the header bytes net/http allows, and 32 more a field for
	// ten fields of HPACK's accounting.
	mh := base.MaxHeaderBytes
	if mh <= 0 {
		mh = http.DefaultMaxHeaderBytes
	}
	s.maxHeaderList = uint32(mh + 10*32)
	return s
}

// serve serves nc until it ends. After stop, nc is closed at once.
func (s *h2Server) serve(nc net.Conn) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		nc.Close()
		return
	}
	s.done.Add(1)
	s.mu.Unlock()
	defer s.done.Done()
	// The client preface is read here, within timeouts.read_header: a
	// client that negotiated h2 and sent nothing is not held longer.
	saw := false
	if rht := s.readHeaderTimeout; rht > 0 {
		var pre [len(http2.ClientPreface)]byte
		nc.SetReadDeadline(time.Now().Add(rht))
		if _, err := io.ReadFull(nc, pre[:]); err != nil || string(pre[:]) != http2.ClientPreface {
			nc.Close()
			return
		}
		saw = true
	}
	// A handshake or request-head deadline set before the hand-over must
	// not end the connection: HTTP/2 keeps its own timers (net/http's
	// server clears them too).
	nc.SetReadDeadline(time.Time{})
	nc.SetWriteDeadline(time.Time{})
	c := newH2Conn(s, nc, newBatchConn(nc, s.idleTimeout))
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		nc.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	c.serve(saw)
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// stop refuses new connections.
func (s *h2Server) stop() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
}

// shutdown sends every connection a GOAWAY and waits until their streams
// are done and they closed, or ctx is done.
func (s *h2Server) shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopped = true
	conns := make([]*h2Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	// On their own goroutines: a connection whose client reads nothing
	// holds its writes, and Shutdown returns at ctx's end regardless.
	for _, c := range conns {
		go c.goAway(http2.ErrCodeNo)
	}
	idle := make(chan struct{})
	go func() {
		s.done.Wait()
		close(idle)
	}()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		// As http.Server.Shutdown: the connections are left to Close.
		return ctx.Err()
	}
}

// closeAll closes every connection at once and refuses new ones.
func (s *h2Server) closeAll() {
	s.mu.Lock()
	s.stopped = true
	for c := range s.conns {
		c.raw.Close() // not the batchConn, which would flush first
	}
	s.mu.Unlock()
}
