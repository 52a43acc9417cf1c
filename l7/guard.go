package l7

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The request-hygiene guard.
//
// net/http's server is lenient where a proxy must not be: given both
// Content-Length and Transfer-Encoding it drops Content-Length and keeps the
// connection (the bytes left over prefix the next request), and so on. The guard sits between the listener and net/http
// and checks every HTTP/1 request's framing as net/http reads it: a malformed
// request (listed below) is answered 400 by the guard and the connection
// closed; net/http never sees its head, so no handler acts on it or on
// anything smuggled behind it.
//
// Bytes pass through unchanged. A request head (and a chunk-size line, and the
// last chunk with its trailer section) is held back until it is complete and
// valid, so that net/http gets either all of it or none of it; body data is
// delivered as it arrives. When a violation is found, Read delivers the bytes
// before the offending head or chunk line and then reports io.EOF; net/http
// answers the requests before it, and when it closes the connection the guard
// writes its 400 behind those answers (guardConn.Close).
//
// The guard stops checking — and trusts net/http and ReverseProxy — on a
// plaintext HTTP/2 connection (prior-knowledge preface) and after a request
// that asks to switch protocols (Upgrade other than h2c with Connection:
// upgrade): what follows a 101 is not HTTP/1. The l7 handler must therefore
// answer every Upgrade request it does not switch with Connection: close.

// What is malformed. Where RFC 9112 lets a recipient choose, the guard
// rejects, because a proxy that accepts what the next hop may read
// differently is how requests are smuggled:
//   - the request line, field lines and the empty line end in CRLF or in
//     a bare LF (RFC 9112 §2.2 allows it; net/http and nginx accept it,
//     and the server rebuilds the head, so the next hop sees CRLF); a bare
//     CR anywhere is rejected, and so is a NUL, obs-fold, whitespace
//     before the colon, a field name that is not a token, a control
//     character (HTAB aside) in a value;
//   - one Content-Length field of 1*DIGIT (at most 2^63-1) with optional
//     whitespace around it: a repeated field or a list is rejected even with
//     equal values (RFC 9110 §8.6 allows merging them; HAProxy and nginx
//     reject, and net/http's merging is exactly what a smuggler probes);
//   - one Transfer-Encoding field whose value is "chunked" (any case) after
//     at most one SP: "gzip, chunked", "chunked, chunked", "chunked;x" and
//     tab or extra whitespace (the classic TE.TE obfuscations) are rejected,
//     and so is Transfer-Encoding in HTTP/1.0 or together with Content-Length;
//   - the request line is token SP target SP "HTTP/1.0" or "HTTP/1.1"
//     (no HTTP/1.2: no client sends it), the target visible ASCII or
//     obs-text; an empty line before it is rejected rather than skipped
//     (net/http does not skip it either);
//   - a chunk-size line is 1 to 16 hex digits, then optionally ";" and an
//     extension without control characters, then CRLF (not a bare LF: as
//     net/http, after RFC errata 7633), at most 4096 bytes; chunk data is
//     followed by CRLF; trailer fields follow the header field rules, but
//     end in CRLF (net/http waits for a trailer section's CRLFCRLF), and
//     must not be Content-Length or Transfer-Encoding.
//
// Host, methods and targets beyond syntax are net/http's business (it
// answers 400 itself for a missing or repeated Host).

// DefaultGuardMaxHead is the default bound on a request head (request line and
// header fields) and on a trailer section, in bytes: 1 MiB.
const DefaultGuardMaxHead = 1 << 20

// guardMaxChunkLine bounds a chunk-size line with its extensions, like
// net/http's chunked reader (maxLineLength).
const guardMaxChunkLine = 4096

// guardReject is the guard's only answer.
const guardReject = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 16\r\n\r\n400 Bad Request\n"

// guardLinger bounds how long, and how much, Close reads what the client
// already sent after a rejected request before closing: closing a TCP socket
// with unread input sends a RST that can destroy the 400 before the client
// reads it (the reason for net/http's closeWriteAndWait, golang.org/issue/3595).
const (
	guardLinger    = 500 * time.Millisecond
	guardLingerMax = 256 << 10
)

// ErrMalformedRequest is wrapped by every *GuardError.
var ErrMalformedRequest = errors.New("malformed HTTP/1 request")

// GuardError says why the guard rejected a connection's input.
type GuardError struct {
	Reason string // what was wrong, e.g. "both Content-Length and Transfer-Encoding"
	Offset int64  // offset of the offending byte in the connection's input
}

func (e *GuardError) Error() string {
	return fmt.Sprintf("l7: malformed HTTP/1 request: %s (at byte %d)", e.Reason, e.Offset)
}

func (e *GuardError) Unwrap() error { return ErrMalformedRequest }

// GuardOptions configure NewGuardListener.
type GuardOptions struct {
	// MaxHead bounds a request head and a trailer section in bytes (default
	// DefaultGuardMaxHead). It is a last line of defence: set it above the
	// server's MaxHeaderBytes+4096 so that net/http answers 431 first; each
	// connection may buffer up to MaxHead bytes of one head.
	MaxHead int
	// ParkAfter, when positive, hands a plaintext connection that
	// implements IdleParker back to its owner once it has waited this long
	// for its next request (see park.go). 0 never parks.
	ParkAfter time.Duration
	// HeadTimeout, when positive, bounds the time from a request head's
	// first byte to its end. The guard holds a head until it is whole, so
	// the server, which starts its own header timeout on the first byte it
	// is given, would only see the idle timeout of its wait.
	HeadTimeout time.Duration
	// Rejections, when set, counts the connections rejected, as
	// Violations does: a counter the entrypoint's servers share, so that
	// it goes on across the server a reload puts in place.
	Rejections prometheus.Counter
}

// GuardedListener wraps the connections of a listener in the guard.
type GuardedListener struct {
	net.Listener
	maxHead     int
	parkAfter   time.Duration
	headTimeout time.Duration
	violations  atomic.Uint64
	rejections  prometheus.Counter // nil: none
}

var _ net.Listener = (*GuardedListener)(nil)

// GuardListener wraps an HTTP listener: each accepted connection that will
// speak HTTP/1 is wrapped so that its request heads are checked as net/http
// reads them. It is NewGuardListener with default options.
func GuardListener(ln net.Listener) net.Listener { return NewGuardListener(ln, GuardOptions{}) }

// NewGuardListener is GuardListener with options.
func NewGuardListener(ln net.Listener, o GuardOptions) *GuardedListener {
	if o.MaxHead <= 0 {
		o.MaxHead = DefaultGuardMaxHead
	}
	return &GuardedListener{Listener: ln, maxHead: o.MaxHead, parkAfter: o.ParkAfter, headTimeout: o.HeadTimeout, rejections: o.Rejections}
}

// Accept returns the next connection, wrapped unless it is a *tls.Conn that
// negotiated h2 (its handshake must be complete): HTTP/2 has its own framing,
// which Go's HTTP/2 server validates, and the HTTP/1 server hands a *tls.Conn
// (and only that) to the HTTP/2 server.
func (l *GuardedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.Guard(c), nil
}

// Guard wraps one connection as Accept does.
func (l *GuardedListener) Guard(c net.Conn) net.Conn {
	tc, _ := c.(*tls.Conn)
	if tc != nil && tc.ConnectionState().NegotiatedProtocol == "h2" {
		return c
	}
	g := &guardConn{Conn: c, tls: tc, ln: l}
	g.s.init(l.maxHead)
	if p, ok := c.(IdleParker); ok && tc == nil && l.parkAfter > 0 {
		g.parker = p
		if p.Resumed() {
			g.s.state = stReqStart
		}
	}
	if tc != nil {
		return &guardTLSConn{g}
	}
	return g
}

// Violations counts the connections rejected so far.
func (l *GuardedListener) Violations() uint64 { return l.violations.Load() }

// TLSState returns the TLS state of a *tls.Conn or of a guarded connection
// over one, nil for plaintext. (net/http sets Request.TLS for guarded TLS
// connections itself: they implement ConnectionState.)
func TLSState(c net.Conn) *tls.ConnectionState {
	var st tls.ConnectionState
	switch c := c.(type) {
	case *tls.Conn:
		st = c.ConnectionState()
	case *guardTLSConn:
		st = c.tls.ConnectionState()
	default:
		return nil
	}
	return &st
}

// GuardViolation returns why the guard rejected c, nil if it did not (or c is
// not guarded).
func GuardViolation(c net.Conn) error {
	if g, ok := c.(interface{ Violation() error }); ok {
		return g.Violation()
	}
	return nil
}

// guardConn is a guarded connection. Read must not be called concurrently
// with itself (net/http never does); Write, Close and the deadline methods
// may be.
type guardConn struct {
	net.Conn
	tls *tls.Conn // non-nil when Conn is one
	ln  *GuardedListener
	s   scanner

	// hold[off:ready] is checked input not yet delivered; hold[ready:] is the
	// start of a head or chunk line still being checked. Read-side only.
	hold       []byte
	holdBuf    *[]byte // hold's buffer came from guardHoldPool in this box
	off, ready int
	rerr       error // read error to report once hold[off:ready] is delivered
	bad        *GuardError
	headBad    bool // bad is in a request head (a request boundary), not a body
	headTimed  bool // the head being read has its HeadTimeout on the socket

	// Parking (park.go): parker is nil when the connection is not parked.
	parker IdleParker
	rdl    atomic.Int64 // net/http's read deadline in Unix ns, 0 for none
	armed  atomic.Bool  // the socket's read deadline is idleRead's, not rdl
	lazy   atomic.Bool  // rdl is not on the socket yet (noteIdleDeadline)
	parkAt atomic.Int64 // idleRead's deadline (Unix ns) while still on the socket, else 0
	parked atomic.Bool  // Read reported EOF to park: Close parks
	// idleFrom is noteIdleDeadline's clock reading, for the idleRead that
	// follows it; zero once taken. It keeps its monotonic reading, so the
	// park deadline made from it does not move with the wall clock. The
	// connection's goroutine's.
	idleFrom time.Time

	viol       atomic.Pointer[GuardError]
	mute       atomic.Bool // the violation ended a body: drop the response to that request
	rejectOnce sync.Once
	closeOnce  sync.Once
	closeErr   error
}

// guardTLSConn is a guarded *tls.Conn. Its ConnectionState makes net/http set
// Request.TLS (net/http does so for a non-*tls.Conn that implements it).
type guardTLSConn struct{ *guardConn }

// ConnectionState returns the wrapped *tls.Conn's state.
func (g *guardTLSConn) ConnectionState() tls.ConnectionState { return g.tls.ConnectionState() }

// Violation returns the *GuardError that made the guard reject the
// connection, or nil.
func (g *guardConn) Violation() error {
	if e := g.viol.Load(); e != nil {
		return e
	}
	return nil
}

func (g *guardConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if g.off < g.ready {
			n := copy(p, g.hold[g.off:g.ready])
			g.off += n
			return n, nil
		}
		if err := g.rerr; err != nil {
			g.rerr = nil
			return 0, err
		}
		if g.bad != nil {
			return g.afterViolation(p)
		}
		if g.off == len(g.hold) {
			// Nothing held: read straight into p, keep what must wait.
			g.resetHold()
			var n int
			var err error
			if g.parker != nil && len(p) > 1 && g.s.state == stReqStart {
				// Waiting for the next request (len(p) == 1 is net/http's
				// background read while a request is served).
				var park bool
				if n, err, park = g.idleRead(p); park {
					g.parked.Store(true)
					return 0, io.EOF
				}
			} else {
				g.disarm()
				n, err = g.Conn.Read(p)
			}
			rel, verr := g.s.feed(p[:n])
			g.headTimed = g.headTimed && g.s.inHead()
			if verr != nil {
				g.fail(verr)
				if rel > 0 {
					return rel, nil
				}
				continue
			}
			if rel < n {
				if g.hold == nil {
					g.holdBuf = guardHoldPool.Get().(*[]byte)
					g.hold = (*g.holdBuf)[:0]
				}
				g.hold = append(g.hold, p[rel:n]...)
			}
			if rel > 0 {
				g.rerr = err
				return rel, nil
			}
			if err != nil {
				return 0, err
			}
			continue
		}
		// A head or chunk line is held: read the rest behind it.
		if g.off > 0 {
			g.hold = g.hold[:copy(g.hold, g.hold[g.off:])]
			g.off, g.ready = 0, 0
		}
		if cap(g.hold)-len(g.hold) < 2048 {
			// The pool keeps one size: a grown buffer is never returned.
			g.hold = append(make([]byte, 0, 2*cap(g.hold)+4096), g.hold...)
		}
		if g.ln.headTimeout > 0 && g.s.inHead() {
			// armed is false when the server set a deadline since armHead
			// (the watcher's end, the next wait): the head's must go back.
			if !g.headTimed || !g.armed.Load() {
				g.armHead()
			}
		} else {
			g.disarm() // the request has begun: the server's deadline again
		}
		start := len(g.hold)
		n, err := g.Conn.Read(g.hold[start:cap(g.hold)])
		g.hold = g.hold[:start+n]
		rel, verr := g.s.feed(g.hold[start:])
		g.headTimed = g.headTimed && g.s.inHead()
		if rel > 0 {
			g.ready = start + rel
		}
		if verr != nil {
			g.hold = g.hold[:g.ready]
			g.fail(verr)
			continue
		}
		g.rerr = err
	}
}

// guardHoldPool holds the buffers a head or chunk line waits in. A
// connection takes one only while such a line is split across reads (net/http
// reads the first 14 bytes of every plaintext connection alone, to look for
// the HTTP/2 preface) and gives it back once it is delivered, so an idle
// keep-alive connection holds none.
var guardHoldPool = sync.Pool{New: func() any { b := make([]byte, 0, guardHoldSize); return &b }}

const guardHoldSize = 4096

// resetHold empties hold, returning the pooled buffer (a larger one a
// large head grew is dropped).
func (g *guardConn) resetHold() {
	if g.holdBuf != nil {
		// Its buffer is free even when hold grew out of it.
		guardHoldPool.Put(g.holdBuf)
		g.holdBuf = nil
	}
	g.hold = nil
	g.off, g.ready = 0, 0
}

func (g *guardConn) fail(e *GuardError) {
	g.bad = e
	g.headBad = g.s.state < stBody && !g.s.trailer
	g.viol.Store(e)
	g.ln.violations.Add(1)
	if g.ln.rejections != nil {
		g.ln.rejections.Inc()
	}
}

// afterViolation answers a Read once everything before the violation has been
// delivered.
func (g *guardConn) afterViolation(p []byte) (int, error) {
	g.disarm()
	if len(p) == 1 {
		// A 1-byte read is net/http's background read while it answers a
		// request before the bad one, whose body is complete (connReader.
		// backgroundRead; it starts when a body hits EOF, which the bad
		// request's body never does). An EOF here would cancel that
		// request's context, and muting here would drop its response, so
		// behave like an idle connection instead: wait, discarding input,
		// until net/http aborts the read with a deadline (abortPendingRead)
		// or the client goes away. net/http's next read is a buffer-sized
		// one, which gets the EOF.
		buf := p
		if cap(g.hold) > 0 {
			buf = g.hold[:cap(g.hold)]
		}
		for {
			if _, err := g.Conn.Read(buf); err != nil {
				return 0, err
			}
		}
	}
	if !g.headBad {
		// The violation is in the body of the request net/http is serving:
		// whatever the handler answers is for a request that was not valid.
		g.mute.Store(true)
	}
	return 0, io.EOF
}

// Write passes p on, except the answer to a request whose body was rejected.
func (g *guardConn) Write(p []byte) (int, error) {
	if g.mute.Load() {
		return 0, g.viol.Load()
	}
	return g.Conn.Write(p)
}

// Close writes the 400 first if the guard rejected the connection.
func (g *guardConn) Close() error {
	g.closeOnce.Do(func() {
		if g.parked.Load() {
			g.parker.Park(g.parkDeadline())
			return
		}
		if g.viol.Load() != nil {
			g.reject()
		}
		g.closeErr = g.Conn.Close()
	})
	return g.closeErr
}

// CloseWrite shuts down the writing side if the wrapped connection can; the
// 400 goes out first if the guard rejected the connection.
func (g *guardConn) CloseWrite() error {
	if g.viol.Load() != nil {
		g.reject()
		return nil
	}
	if cw, ok := g.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("l7: guard: CloseWrite on %T: %w", g.Conn, errors.ErrUnsupported)
}

func (g *guardConn) reject() {
	g.rejectOnce.Do(func() {
		c := g.Conn
		_ = c.SetWriteDeadline(time.Now().Add(guardLinger))
		if _, err := io.WriteString(c, guardReject); err != nil {
			return
		}
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		_ = c.SetReadDeadline(time.Now().Add(guardLinger))
		_, _ = io.CopyN(io.Discard, c, guardLingerMax)
	})
}

// guardPreface starts a plaintext HTTP/2 connection (RFC 9113 §3.4).
const guardPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// stepPreface matches the HTTP/2 connection preface; on the first byte that
// differs it rescans what matched as the start of an HTTP/1 request.
func (s *scanner) stepPreface(c byte) scanStep {
	if c == guardPreface[s.sub] {
		s.sub++
		if s.sub == len(guardPreface) {
			s.state = stPass
			return stepRelease
		}
		return stepMore
	}
	k := s.sub
	s.state, s.sub = stReqStart, 0
	for j := 0; j < k; j++ {
		if s.step(guardPreface[j]) == stepFail {
			return stepFail
		}
	}
	return s.step(c)
}

// endMessage starts the next request, or stops checking after a request to
// switch protocols: net/http and ReverseProxy either tunnel what follows a 101
// (no longer HTTP/1) or answer the request, which the l7 handler then does
// with Connection: close. An h2c upgrade is never honoured, so it does not
// stop the checks.
func (s *scanner) endMessage() {
	if s.connUpgrade && s.upgradeOther {
		s.state = stPass
		return
	}
	*s = scanner{maxHead: s.maxHead, state: stReqStart, pos: s.pos, bareLF: s.bareLF}
}

// fast passes, in one go, a whole request line or field line at the start
// of b that step would pass byte by byte without acting on it (most lines of
// most heads), leaving anything else to step. It returns the bytes passed.
func (s *scanner) fast(b []byte) int {
	var j int
	switch s.state {
	case stReqStart:
		m := guardSpan(b, &guardTchar, 0)
		t := m + 1 + guardSpan(b[min(m+1, len(b)):], &guardTargetByte, 0x21)
		j = t + 11
		if m == 0 || t == m+1 || len(b) < j || b[m] != ' ' || b[t] != ' ' || string(b[t+1:j-3]) != "HTTP/1." ||
			b[j-3] != '0' && b[j-3] != '1' || b[j-2] != '\r' || b[j-1] != '\n' {
			return 0
		}
		s.http10 = b[j-3] == '0'
	case stFieldStart:
		n := guardSpan(b, &guardTchar, 0)
		if n == 0 || n == len(b) || b[n] != ':' || guardFramingName(b[:n]) {
			return 0
		}
		j = n + 1 + guardSpan(b[n+1:], &guardValueByte, 0x20) + 2
		if len(b) < j || b[j-2] != '\r' || b[j-1] != '\n' {
			return 0
		}
	default:
		return 0
	}
	if s.n+j > s.maxHead {
		return 0
	}
	s.n += j
	s.pos += int64(j)
	s.state = stFieldStart
	return j
}

// guardSpan returns how many bytes at the start of b are ok. With lt > 0,
// ok must hold every byte from lt up but DEL: then it checks 8 bytes at a
// time while none is below lt or DEL (the "hasless" trick of Bit Twiddling
// Hacks), which is what values and targets are made of.
func guardSpan(b []byte, ok *[256]bool, lt byte) int {
	k := 0
	if lt > 0 {
		low := uint64(lt) * 0x0101010101010101
		for ; k+8 <= len(b); k += 8 {
			x := binary.LittleEndian.Uint64(b[k:])
			y := x ^ 0x7f7f7f7f7f7f7f7f
			if ((x-low)&^x|(y-0x0101010101010101)&^y)&0x8080808080808080 != 0 {
				break
			}
		}
	}
	for k < len(b) && ok[b[k]] {
		k++
	}
	return k
}

// guardFramingName reports whether name is one of guardFieldNames.
func guardFramingName(name []byte) bool {
	for _, f := range guardFieldNames[fieldCL:] {
		if len(name) == len(f) && guardEqualFold(name, f) {
			return true
		}
	}
	return false
}

func guardEqualFold(b []byte, lower string) bool {
	for i, c := range b {
		if guardLower(c) != lower[i] {
			return false
		}
	}
	return true
}
