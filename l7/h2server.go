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
// preface) with golang.org/x/net/http2's server, each over a batchConn.
//
// Why not net/http's bundled copy of the same server, through
// http.Server.Serve: it serves HTTP/2 over TLS only on a *tls.Conn, so
// nothing can sit between it and the TLS writes. Its serve loop flushes
// whenever its write queue runs empty, which under load is after nearly
// every frame: a response's HEADERS, then its DATA, each its own TLS
// record and write syscall (two per request, the largest cost of a small
// proxied request). The batchConn below it gathers the flushes of the
// streams that finish together into one record and one write.
type h2Server struct {
	base *http.Server // timeouts, HTTP2 config, ErrorLog; never served
	srv  *http2.Server
	log  *slog.Logger // the entrypoint's
	// resetCloses counts the connections closed for rapid reset (nil:
	// not counted).
	resetCloses prometheus.Counter
	// hooks holds x/net's graceful-shutdown hook (http2.ConfigureServer
	// registers it on this server); its Shutdown only runs the hook.
	hooks *http.Server

	stalls h2Stalls

	mu      sync.Mutex
	conns   map[net.Conn]struct{} // the connections served, as handed over
	stopped bool
	done    sync.WaitGroup // one per connection served
}

// serveStream is the base server's handler, its ResponseWriter wrapped so
// that a stream whose client gives no flow-control credit for
// timeouts.idle is reset, and its body so that one the client stops
// sending for as long ends (h2stall.go). Each connection's h2ConnHandler
// calls it (h2reset.go).
func (s *h2Server) serveStream(w http.ResponseWriter, r *http.Request) {
	if s.stalls.stall <= 0 {
		s.base.Handler.ServeHTTP(w, r)
		return
	}
	sw := &h2StallWriter{ResponseWriter: w, s: &s.stalls}
	if s.stalls.limit > 0 {
		sw.start = time.Now().UnixNano()
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &h2StallBody{ReadCloser: r.Body, w: sw}
	}
	s.stalls.add(sw)
	defer s.stalls.remove(sw)
	s.base.Handler.ServeHTTP(sw, r)
}

// newH2Server serves with base's settings. base is the HTTP/2 server's
// own: its WriteTimeout becomes x/net's per-stream one (h2stall.go). log
// and resetCloses report connections closed for rapid reset (h2reset.go).
func newH2Server(base *http.Server, log *slog.Logger, resetCloses prometheus.Counter) *h2Server {
	// Responses are encoded without HPACK's dynamic table (no entry fits
	// in one byte), as nginx encodes them: each carries a unique
	// X-Request-Id, which would be indexed and evict the entries worth
	// keeping, and the table's upkeep cost 9 % of the CPU of a small
	// proxied request (h2-tls A/B). The static table and Huffman coding
	// still apply; a response's head grows by some 40 bytes.
	srv := &http2.Server{IdleTimeout: base.IdleTimeout, MaxEncoderHeaderTableSize: 1}
	hooks := &http.Server{}
	// ConfigureServer's only error is about TLS 1.2 cipher suites, which
	// hooks does not set.
	if err := http2.ConfigureServer(hooks, srv); err != nil {
		panic("l7: http2.ConfigureServer: " + err.Error())
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &h2Server{base: base, srv: srv, log: log, resetCloses: resetCloses, hooks: hooks, conns: make(map[net.Conn]struct{})}
	s.stalls.stall = base.IdleTimeout
	if stall, limit := base.IdleTimeout, base.WriteTimeout; stall > 0 && (limit <= 0 || limit > stall) {
		// x/net arms the stall timeout as each stream opens; the sweep
		// moves it on while the handler runs, up to timeouts.write. A
		// timeouts.write no longer than the stall timeout bounds every
		// stream, its last write included, by itself.
		s.stalls.extend, s.stalls.limit = true, max(limit, 0)
		base.WriteTimeout = stall
	}
	return s
}

// serve serves c until it ends. After stop, c is closed at once.
func (s *h2Server) serve(c net.Conn) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		c.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.done.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.done.Done()
	}()
	// The client preface is read here, within timeouts.read_header: x/net
	// waits 10s for it whatever the server's timeouts, so a client that
	// negotiated h2 and sent nothing held its connection that long.
	saw := false
	if rht := s.base.ReadHeaderTimeout; rht > 0 {
		var pre [len(http2.ClientPreface)]byte
		c.SetReadDeadline(time.Now().Add(rht))
		if _, err := io.ReadFull(c, pre[:]); err != nil || string(pre[:]) != http2.ClientPreface {
			c.Close()
			return
		}
		saw = true
	}
	// A handshake or request-head deadline set before the hand-over must
	// not end the connection: HTTP/2 keeps its own timers (net/http's
	// server clears them too).
	c.SetReadDeadline(time.Time{})
	c.SetWriteDeadline(time.Time{})
	bc := newBatchConn(c, s.base.IdleTimeout)
	s.srv.ServeConn(bc, &http2.ServeConnOpts{
		Context:          context.Background(),
		BaseConfig:       s.base,
		Handler:          newH2ConnHandler(s, bc),
		SawClientPreface: saw,
	})
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
	s.stop()
	idle := make(chan struct{})
	go func() {
		s.done.Wait()
		close(idle)
	}()
	poll := time.Millisecond
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-idle:
			return nil
		case <-ctx.Done():
			// As http.Server.Shutdown: the connections are left to Close.
			return ctx.Err()
		case <-t.C:
			// Again on every tick: a connection handed over while the
			// hook ran registers with x/net a moment later. The GOAWAY is
			// sent once per connection.
			_ = s.hooks.Shutdown(context.Background())
			poll = min(2*poll, 100*time.Millisecond)
			t.Reset(poll)
		}
	}
}

// closeAll closes every connection at once and refuses new ones.
func (s *h2Server) closeAll() {
	s.mu.Lock()
	s.stopped = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
}
