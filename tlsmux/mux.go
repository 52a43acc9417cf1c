package tlsmux

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proxynow/proxynow/l4"
)

// Options configure a Mux.
type Options struct {
	Entrypoint string
	Routes     []Route
	// Certs serves Terminate routes; required when any route terminates.
	Certs *CertStore
	// MinVersion is the lowest TLS version accepted when terminating;
	// default TLS 1.2.
	MinVersion uint16
	// HandshakeTimeout bounds the peek and, when terminating, the
	// handshake; default 10s.
	HandshakeTimeout time.Duration
	// Fallback, when set, takes TLS connections that no route claims: the
	// Mux terminates them with Certs, advertising FallbackALPN, and hands
	// the decrypted stream on (the entrypoint's HTTP server). Without it
	// such connections get an unrecognized_name alert.
	Fallback     l4.Handler
	FallbackALPN []string
	Logger       *slog.Logger
	// Metrics, when set, counts handshakes (see metrics.go).
	Metrics *Metrics
	// Challenges, when set, answers ACME tls-alpn-01 validations before
	// any route is chosen.
	Challenges ALPNChallenges
}

// Mux is the l4.Handler of a TCP entrypoint with TLS-aware routes.
type Mux struct {
	entrypoint string
	table      *table
	certs      *CertStore
	configs    map[*Route]*tls.Config // per Terminate route, and the fallback
	fallback   *Route
	challenges ALPNChallenges
	timeout    time.Duration
	log        *slog.Logger
	stats      Stats
	metrics    *Metrics
}

// Stats counts what happened to connections; read with the atomics' Load.
type Stats struct {
	Passthrough  atomic.Uint64 // handed on untouched
	Terminated   atomic.Uint64 // handshakes completed
	Plain        atomic.Uint64 // not TLS, handed to the plain route
	BadHello     atomic.Uint64 // malformed, oversized, not TLS with no plain route, or timed out
	NoRoute      atomic.Uint64 // a valid ClientHello no route claims
	HandshakeErr atomic.Uint64 // terminating handshakes that failed
}

var _ l4.Handler = (*Mux)(nil)

// New compiles the routes of one entrypoint.
func New(o Options) (*Mux, error) {
	t, err := compile(o.Routes)
	if err != nil {
		return nil, err
	}
	m := &Mux{entrypoint: o.Entrypoint, table: t, certs: o.Certs, timeout: o.HandshakeTimeout,
		log: o.Logger, configs: map[*Route]*tls.Config{}, metrics: o.Metrics, challenges: o.Challenges}
	if m.timeout <= 0 {
		m.timeout = 10 * time.Second
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	minVersion := o.MinVersion
	if minVersion == 0 {
		minVersion = tls.VersionTLS12
	}
	if o.Fallback != nil {
		m.fallback = &Route{Name: "", ALPN: o.FallbackALPN, Mode: Terminate, Handler: o.Fallback}
		o.Routes = append(o.Routes[:len(o.Routes):len(o.Routes)], *m.fallback)
		m.fallback = &o.Routes[len(o.Routes)-1]
	}
	for i := range o.Routes {
		r := &o.Routes[i]
		if r.Mode != Terminate {
			continue
		}
		if o.Certs == nil {
			return nil, fmt.Errorf("route %q terminates TLS but no certificate is configured", r.Name)
		}
		m.configs[r] = &tls.Config{
			MinVersion:     minVersion,
			GetCertificate: o.Certs.GetCertificate,
			NextProtos:     r.ALPN,
		}
	}
	return m, nil
}

// Stats returns the Mux's counters.
func (m *Mux) Stats() *Stats { return &m.stats }

// peekBufs hold the bytes peeked from a connection until its handler is
// done with them. Most ClientHellos fit 2 KiB; post-quantum ones ~1.9 KiB
// more; the buffer grows to maxPeek for the rare larger one.
var peekBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

var scratchBufs = sync.Pool{New: func() any { b := make([]byte, MaxHelloSize); return &b }}

// maxPeek bounds the bytes read while looking for a complete ClientHello:
// the largest hello plus the record headers of a hello fragmented into
// small records.
const maxPeek = MaxHelloSize + 16<<10

// ServeTCP peeks the ClientHello and hands the connection to its route.
func (m *Mux) ServeTCP(ctx context.Context, c *l4.Conn) {
	bp := peekBufs.Get().(*[]byte)
	defer func() {
		*bp = (*bp)[:0]
		peekBufs.Put(bp)
	}()
	_ = c.SetDeadline(time.Now().Add(m.timeout))
	var hello ClientHello
	data, err := m.peek(c, bp, &hello)
	// What was read is replayed to whoever takes the connection.
	c.Prefix = data
	switch {
	case errors.Is(err, ErrNotTLS) && m.table.plain != nil:
		m.stats.Plain.Add(1)
		m.hand(ctx, c, m.table.plain)
		return
	case isTimeout(err) && len(data) == 0 && m.table.plain != nil:
		// A client that waits for the server to speak first (SMTP, MySQL):
		// after the handshake timeout, the plain route gets it, as with
		// HAProxy's inspect-delay.
		m.stats.Plain.Add(1)
		m.hand(ctx, c, m.table.plain)
		return
	case err != nil:
		m.stats.BadHello.Add(1)
		m.count(kindUnrouted, resultBadHello, 0)
		m.log.Debug("connection closed: no valid ClientHello", "entrypoint", m.entrypoint,
			"client", c.Client, "bytes", len(data), "error", err)
		c.Close()
		return
	}
	if m.challenges != nil && m.answerChallenge(ctx, c, &hello) {
		return
	}
	r := m.table.match(&hello)
	if r == nil {
		r = m.fallback
	}
	if r == nil {
		m.stats.NoRoute.Add(1)
		m.count(kindUnrouted, resultNoRoute, offeredVersion(&hello))
		m.log.Debug("connection closed: no route for server name", "entrypoint", m.entrypoint,
			"client", c.Client, "sni", string(hello.ServerName))
		_, _ = c.TCPConn.Write(alertUnrecognizedName)
		c.Close()
		return
	}
	if r.Mode == Terminate {
		m.terminate(ctx, c, r)
		return
	}
	m.stats.Passthrough.Add(1)
	m.count(kindPassthrough, resultOK, offeredVersion(&hello))
	m.hand(ctx, c, r)
}

// hand passes c on with its deadline cleared.
func (m *Mux) hand(ctx context.Context, c *l4.Conn, r *Route) {
	_ = c.SetDeadline(time.Time{})
	r.Handler.ServeTCP(ctx, c)
}

func (m *Mux) terminate(ctx context.Context, c *l4.Conn, r *Route) {
	tc := tls.Server(c, m.configs[r])
	hctx, cancel := context.WithTimeout(ctx, m.timeout)
	began := time.Now()
	err := tc.HandshakeContext(hctx)
	cancel()
	m.observeHandshake(time.Since(began))
	if err != nil {
		m.stats.HandshakeErr.Add(1)
		m.count(kindTerminate, resultError, 0)
		m.log.Debug("TLS handshake failed", "entrypoint", m.entrypoint, "route", r.Name,
			"client", c.Client, "error", err)
		c.Close()
		return
	}
	m.stats.Terminated.Add(1)
	if m.metrics != nil {
		m.count(kindTerminate, resultOK, tc.ConnectionState().Version)
	}
	c.Stream = tc
	m.hand(ctx, c, r)
}

// peek reads from c into *bp until a whole ClientHello is there, the bytes
// are not TLS, or they are malformed. It returns the bytes read.
func (m *Mux) peek(c *l4.Conn, bp *[]byte, h *ClientHello) ([]byte, error) {
	buf := *bp
	var scratch *[]byte
	defer func() {
		if scratch != nil {
			scratchBufs.Put(scratch)
		}
	}()
	need := 0
	for {
		if len(buf) > 0 {
			var sb []byte
			if scratch != nil {
				sb = *scratch
			}
			n, err := ParseRecords(buf, sb, h)
			if errors.Is(err, ErrNeedScratch) && scratch == nil {
				scratch = scratchBufs.Get().(*[]byte)
				continue
			}
			if !errors.Is(err, ErrIncomplete) {
				*bp = buf
				return buf, err
			}
			need = n
		}
		if len(buf) >= maxPeek {
			*bp = buf
			return buf, ErrTooLarge
		}
		if cap(buf)-len(buf) < 512 || need > cap(buf) {
			grown := make([]byte, len(buf), min(max(2*cap(buf), need), maxPeek))
			copy(grown, buf)
			buf = grown
		}
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil && n == 0 {
			*bp = buf
			return buf, err
		}
	}
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

// alertUnrecognizedName is a fatal unrecognized_name(112) alert record
// (RFC 8446 §6.2), sent when no route claims the SNI.
var alertUnrecognizedName = []byte{21, 3, 3, 0, 2, 2, 112}
