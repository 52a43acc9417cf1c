package l7

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/proxynow/proxynow/l4"
	"golang.org/x/net/http/httpguts"
)

// h1Transport is the keep-alive pool toward one plain-HTTP backend for
// requests without a body (most proxied requests: GET, HEAD, DELETE...).
// It writes the request and reads the response on the caller's goroutine,
// where net/http's Transport hands every request to a connection's write
// goroutine and the response back from its read goroutine, with contexts,
// timers and channels around each: at proxy rates those handoffs cost
// more than the proxying itself. Everything else — request bodies,
// upgrades, Expect, anything this writer does not handle byte-exactly —
// goes to the net/http Transport (fallback), so the fast path stays small.
//
// The response is parsed by readResponse (h1t_head.go), which does what
// http.ReadResponse does with far fewer allocations; a connection is
// reused only after its response body was read to the end, with no byte
// left over, and it is checked for unsolicited bytes and for a close by
// the backend before each reuse (peekIdle).
type h1Transport struct {
	fallback *http.Transport
	addr     string
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	// maxIdle bounds the idle pool; idleTimeout closes connections idle
	// that long; headerTimeout bounds the wait for a response's headers.
	maxIdle       int
	idleTimeout   time.Duration
	headerTimeout time.Duration

	mu      sync.Mutex
	idle    []*h1Conn // most recently used last
	janitor *time.Timer
	armed   bool
}

var _ http.RoundTripper = (*h1Transport)(nil)

// h1ReadBuf and h1WriteBuf size a connection's buffers: a response head
// and a request head fit; larger bodies are read straight into the proxy's
// 32 KiB copy buffer.
const (
	h1ReadBuf  = 16 << 10
	h1WriteBuf = 4 << 10
	// h1MaxHead bounds a response head, like net/http's
	// MaxResponseHeaderBytes (whose default is larger: 10 MB).
	h1MaxHead = 1 << 20
	// h1Max1xx bounds informational responses before the final one
	// (net/http: 5); each is forwarded to the client (informational.go).
	h1Max1xx = 5
)

// h1Conn is one backend connection.
type h1Conn struct {
	t      *h1Transport
	nc     net.Conn
	rio    *l4.RawIO // nc's reads and writes, when it is a TCP socket
	br     *bufio.Reader
	bw     *bufio.Writer
	nread  int64 // bytes read from nc
	limit  int64 // while reading a head: nread may not pass it (0: no limit)
	reused bool
	since  int64  // monoNow when it went idle
	took   int64  // monoNow when the request now on it took it (header deadline)
	wake   func() // ends a wait: the request's context is done
	// wctx is the h1 server's request context that wakes this connection
	// instead (h1ctx.setWaker); unwake clears it, made once.
	wctx   *h1ctx
	unwake func() bool

	// The response-header deadline, kept on the socket lazily: hdrSock is
	// the deadline put there for an earlier request (a monoNow reading; 0
	// when the socket has another or none). It is kept while at most
	// headerTimeout/hdrSlack sooner than the current request's, hdrDue;
	// when it fires first, Read puts hdrDue there and reads on. woken
	// tells that firing from a wake-up (wakeRead), which must end the read.
	hdrSock int64 // monoNow's clock
	hdrDue  int64
	woken   atomic.Bool

	// peekIdle's and flushAndWait's state (h1peek_linux.go)
	raw       syscall.RawConn
	peekFn    func(fd uintptr)
	peekBuf   [1]byte
	peekOK    bool
	waitFn    func(fd uintptr) bool
	waitCalls int
	flushErr  error
}

var errHeadTooLarge = errors.New("response head too large")

// Read counts what the bufio.Reader takes from the connection and bounds a
// response head.
func (c *h1Conn) Read(p []byte) (int, error) {
	if c.limit > 0 && c.nread >= c.limit {
		return 0, errHeadTooLarge
	}
	for {
		var n int
		var err error
		if c.rio != nil {
			n, err = c.rio.Read(p)
		} else {
			n, err = c.nc.Read(p)
		}
		c.nread += int64(n)
		if err == nil || c.hdrDue == 0 || !c.earlyHeaderDeadline(err) {
			return n, err
		}
	}
}

// hdrSlack: a response-header deadline up to headerTimeout/hdrSlack sooner
// than a request's own is kept on the socket (setHeaderDeadline).
const hdrSlack = 16

// setHeaderDeadline bounds the wait for the response head at d from now.
// The deadline on the socket is updated only when the one there is not a
// header deadline or is more than headerTimeout/hdrSlack sooner: a busy
// connection changes its timer every few requests, not per request (a
// runtime timer update and two clock reads each).
func (c *h1Conn) setHeaderDeadline(d time.Duration) {
	due := c.took + int64(d)
	c.hdrDue = due
	if s := c.hdrSock; s != 0 && s <= due && due-s <= int64(d/hdrSlack) {
		return
	}
	c.putHeaderDeadline(due)
}

// putHeaderDeadline puts due on the socket, unless a wake-up came first:
// its past deadline must stay (false). wakeRead marks woken before it sets
// that deadline, so either this sees the mark or the wake-up's deadline
// lands after this one.
func (c *h1Conn) putHeaderDeadline(due int64) bool {
	c.hdrSock = 0
	c.nc.SetReadDeadline(monoTime(due))
	if c.woken.Load() {
		c.nc.SetReadDeadline(aLongTimeAgo)
		return false
	}
	c.hdrSock = due
	return true
}

// clearHeaderDeadline takes the header deadline off the socket: a body
// is read from it next.
func (c *h1Conn) clearHeaderDeadline() {
	c.hdrSock = 0
	c.nc.SetReadDeadline(time.Time{})
}

// earlyHeaderDeadline reports whether err is the kept header deadline
// firing before the request's own (hdrDue), which it then puts on the
// socket: the read goes on. A wake-up's past deadline is never replaced
// (putHeaderDeadline).
func (c *h1Conn) earlyHeaderDeadline(err error) bool {
	// Only the deadline: a socket's own ETIMEDOUT (keepalive, retransmits)
	// ends the read.
	if !errors.Is(err, os.ErrDeadlineExceeded) || c.woken.Load() || monoNow() >= c.hdrDue {
		return false
	}
	return c.putHeaderDeadline(c.hdrDue)
}

// wakeRead ends a wait on c: the request's context is done.
func (c *h1Conn) wakeRead() {
	c.woken.Store(true)
	c.nc.SetReadDeadline(aLongTimeAgo)
}

// h1Wake is c as the h1 server's request context wakes it (h1ctx.setWaker).
type h1Wake h1Conn

func (w *h1Wake) SetReadDeadline(time.Time) error {
	(*h1Conn)(w).wakeRead()
	return nil
}

func (t *h1Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	if t.armed {
		t.janitor.Stop()
		t.armed = false
	}
	t.mu.Unlock()
	for _, c := range idle {
		c.nc.Close()
	}
	t.fallback.CloseIdleConnections()
}

// fast reports whether req can take the fast path: no body, nothing that
// needs net/http's protocol handling, and every header field valid as
// written (net/http would drop an invalid one; the fallback does).
func (t *h1Transport) fast(req *http.Request, ri *reqInfo) bool {
	if req.Body != nil && req.Body != http.NoBody || req.URL.Scheme != "http" || req.URL.Opaque != "" ||
		req.Close || req.Method == http.MethodConnect || !validMethod(req.Method) {
		return false
	}
	if _, ok := req.Header["Expect"]; ok {
		return false
	}
	if _, ok := req.Header["Upgrade"]; ok {
		return false
	}
	if !httpguts.ValidHostHeader(hostFor(req)) {
		return false
	}
	if ri != nil && ri.checked == req {
		return true // the proxy checked every field as it built them
	}
	for k, vv := range req.Header {
		if !validField(k, vv) {
			return false
		}
	}
	return true
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		if !httpguts.IsTokenRune(rune(m[i])) {
			return false
		}
	}
	return true
}

func hostFor(req *http.Request) string {
	if req.Host != "" {
		return req.Host
	}
	return req.URL.Host
}

func (t *h1Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ri := infoFrom(req.Context())
	if !t.fast(req, ri) {
		return t.fallback.RoundTrip(req)
	}
	if ri != nil {
		ri.tripOpen = false // done with req when its response body is
	}
	for try := 0; ; try++ {
		c, err := t.getConn(req.Context())
		if err != nil {
			return nil, err
		}
		resp, stale, err := c.roundTrip(req)
		if err == nil {
			return resp, nil
		}
		c.nc.Close()
		// A reused connection the backend closed as the request went out
		// is net/http's errServerClosedIdle: nothing was answered, so a
		// replayable request goes again on a new connection.
		if stale && try == 0 && replayableMethod(req) {
			continue
		}
		return nil, err
	}
}

// replayableMethod is net/http's rule for resending a bodyless request
// after its connection failed: an idempotent method or an idempotency key.
func replayableMethod(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, k1 := req.Header["Idempotency-Key"]
	_, k2 := req.Header["X-Idempotency-Key"]
	return k1 || k2
}

// getConn takes the most recently used idle connection that is still
// usable, or dials.
func (t *h1Transport) getConn(ctx context.Context) (*h1Conn, error) {
	for {
		t.mu.Lock()
		n := len(t.idle)
		if n == 0 {
			t.mu.Unlock()
			break
		}
		c := t.idle[n-1]
		t.idle[n-1] = nil
		t.idle = t.idle[:n-1]
		t.mu.Unlock()
		now := monoNow()
		if t.idleTimeout > 0 && now-c.since > int64(t.idleTimeout) || !peekIdle(c) {
			c.nc.Close()
			continue
		}
		c.reused = true
		c.took = now
		return c, nil
	}
	nc, err := t.dial(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	c := &h1Conn{t: t, nc: nc, took: monoNow()}
	var w io.Writer = nc
	if tc, ok := nc.(*net.TCPConn); ok {
		// Raw system calls: see l4.RawIO.
		if c.rio = l4.NewRawIO(tc); c.rio != nil {
			w = c.rio
		}
	}
	c.bw = bufio.NewWriterSize(w, h1WriteBuf)
	c.br = bufio.NewReaderSize(c, h1ReadBuf)
	return c, nil
}

func (t *h1Transport) putIdle(c *h1Conn) {
	c.since = monoNow()
	t.mu.Lock()
	if len(t.idle) >= t.maxIdle {
		t.mu.Unlock()
		c.nc.Close()
		return
	}
	t.idle = append(t.idle, c)
	if t.idleTimeout > 0 && !t.armed {
		if t.janitor == nil {
			t.janitor = time.AfterFunc(t.idleTimeout, t.prune)
		} else {
			t.janitor.Reset(t.idleTimeout)
		}
		t.armed = true
	}
	t.mu.Unlock()
}

// prune closes connections idle longer than idleTimeout, so that a pool
// left idle after a burst does not hold them until the next request.
func (t *h1Transport) prune() {
	t.mu.Lock()
	now := monoNow()
	var old []*h1Conn
	keep := t.idle[:0]
	for _, c := range t.idle {
		if now-c.since >= int64(t.idleTimeout) {
			old = append(old, c)
		} else {
			keep = append(keep, c)
		}
	}
	clear(t.idle[len(keep):])
	t.idle = keep
	t.armed = len(keep) > 0
	if t.armed {
		t.janitor.Reset(t.idleTimeout - time.Duration(now-keep[0].since))
	}
	t.mu.Unlock()
	for _, c := range old {
		c.nc.Close()
	}
}

// excludedRequestHeader reports the fields roundTrip writes itself or not
// at all. A switch, not a map: it is asked for every field of every
// request, and compiles to a few length and word compares where a map
// lookup hashes the key.
func excludedRequestHeader(k string) bool {
	switch k {
	case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
		return true
	}
	return false
}

// roundTrip writes req and reads the response head. stale reports a
// reused connection that failed before any response byte arrived.
func (c *h1Conn) roundTrip(req *http.Request) (resp *http.Response, stale bool, err error) {
	bw := c.bw
	bw.WriteString(req.Method)
	bw.WriteByte(' ')
	if p := req.URL.EscapedPath(); p != "" {
		bw.WriteString(p)
	} else {
		bw.WriteByte('/')
	}
	if req.URL.ForceQuery || req.URL.RawQuery != "" {
		bw.WriteByte('?')
		bw.WriteString(req.URL.RawQuery)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(hostFor(req))
	bw.WriteString("\r\n")
	if ua := req.Header["User-Agent"]; len(ua) > 0 && ua[0] != "" {
		bw.WriteString("User-Agent: ")
		bw.WriteString(ua[0])
		bw.WriteString("\r\n")
	}
	switch req.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		// A body-carrying method with an empty body says so
		// (net/http's transferWriter does the same).
		bw.WriteString("Content-Length: 0\r\n")
	}
	for k, vv := range req.Header {
		if excludedRequestHeader(k) {
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(textproto.TrimString(v))
			bw.WriteString("\r\n")
		}
	}
	bw.WriteString("\r\n")
	n0 := c.nread

	ctx := req.Context()
	// The client going away (or the balancer's per-try deadline) ends the
	// wait at once, as it does in net/http's Transport.
	var stop func() bool
	c.woken.Store(false)
	if w := wakerOf(ctx); w != nil && w.setWaker((*h1Wake)(c)) {
		// The h1 server's request context wakes the connection itself:
		// no AfterFunc registration (five allocations) per request.
		if c.unwake == nil {
			// wctx is let go as the round trip ends: an idle pooled
			// connection must not keep the client's request alive.
			c.unwake = func() bool {
				w := c.wctx
				if w == nil {
					return false // a second call: already cleared
				}
				c.wctx = nil
				return w.clearWaker()
			}
		}
		c.wctx, stop = w, c.unwake
	} else {
		if c.wake == nil {
			c.wake = c.wakeRead
		}
		stop = afterDone(ctx, c.wake)
	}
	if t := c.t.headerTimeout; t > 0 {
		c.setHeaderDeadline(t)
	}
	// The deadlines are armed before the write: flushAndWait writes and
	// then waits for the answer in one step.
	if err := flushAndWait(c); err != nil {
		stop()
		return nil, c.reused, fmt.Errorf("write request: %w", err)
	}
	c.limit = c.nread + h1MaxHead
	b := &h1Body{c: c, stop: stop}
	for i := 0; ; i++ {
		resp, err = readResponse(c.br, req, &b.rd, &b.blk)
		if err != nil || resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		if i == h1Max1xx {
			err = errors.New("too many 1xx responses")
			break
		}
		if ri := infoFrom(ctx); ri != nil && ri.w1xx != nil {
			forward1xx(ri.w1xx, resp.StatusCode, resp.Header)
		} else if tr := httptrace.ContextClientTrace(ctx); tr != nil && tr.Got1xxResponse != nil {
			if err = tr.Got1xxResponse(resp.StatusCode, textproto.MIMEHeader(resp.Header)); err != nil {
				break
			}
		}
	}
	c.limit = 0
	c.hdrDue = 0 // the head's wait is over
	if err == nil && resp.StatusCode == http.StatusSwitchingProtocols {
		err = errors.New("101 Switching Protocols to a request that asked for no upgrade")
	}
	if err != nil {
		stop()
		switch {
		case ctx.Err() != nil:
			err = context.Cause(ctx)
		case isTimeout(err):
			err = fmt.Errorf("timeout awaiting response headers: %w", err)
		}
		// Only a connection that ended before answering is stale; a
		// backend that stays silent until the header timeout is not asked
		// again (nor is it by net/http's Transport).
		return nil, c.reused && c.nread == n0 && ctx.Err() == nil && !isTimeout(err), err
	}
	b.rc, b.reuse = resp.Body, !resp.Close
	if c.t.headerTimeout > 0 && !b.buffered() {
		c.clearHeaderDeadline()
		if ctx.Err() != nil {
			// The context ended as the headers arrived: the deadline just
			// cleared may have been its wake-up; the body must see it too.
			c.nc.SetReadDeadline(aLongTimeAgo)
		}
	}
	if resp.Body == http.NoBody {
		b.finish(true)
		return resp, false, nil
	}
	resp.Body = b
	return resp, false, nil
}

// buffered reports whether the rest of the response is in the read
// buffer, so that reading it needs no deadline cleared: none of its reads
// reaches the connection (the next request sets its own deadline).
func (b *h1Body) buffered() bool {
	if b.rc == http.NoBody {
		return true
	}
	return b.rc == io.ReadCloser(&b.rd) && b.rd.kind == bodyLength && b.rd.n <= int64(b.c.br.Buffered())
}

// afterDone is context.AfterFunc, but straight through the context's own
// AfterFunc when it has one (a reqInfo, over the h1 server's request
// context): 3 allocations instead of context.AfterFunc's 8, which wraps
// the call in a cancelCtx of its own and makes the parent's Done channel.
func afterDone(ctx context.Context, f func()) (stop func() bool) {
	if a, ok := ctx.(afterFuncer); ok {
		return a.AfterFunc(f)
	}
	return context.AfterFunc(ctx, f)
}

// aLongTimeAgo is a deadline in the past: it wakes a blocked Read.
var aLongTimeAgo = time.Unix(1, 0)

// h1Body is a response body on the fast path. Its connection goes back to
// the pool when the body was read to io.EOF (trailers included) and the
// response allows keep-alive; closing it early, or any read error, closes
// the connection instead of draining it (a long stream would block).
type h1Body struct {
	c *h1Conn
	// rc is the body: usually &rd, or http.ReadResponse's for a head too
	// large for readResponse.
	rc    io.ReadCloser
	rd    respBody
	blk   respBlock // the final response, for readResponse
	stop  func() bool
	reuse bool
	// state: bodyReading; bodyEOF or bodyClosed once the connection was
	// handed on (to the pool or closed).
	state atomic.Int32
}

const (
	bodyReading = iota
	bodyEOF
	bodyClosed
)

var errBodyClosed = errors.New("read on closed response body")

func (b *h1Body) Read(p []byte) (int, error) {
	switch b.state.Load() {
	case bodyEOF:
		return 0, io.EOF
	case bodyClosed:
		return 0, errBodyClosed
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.finish(true)
	case err != nil:
		b.finish(false)
	}
	return n, err
}

func (b *h1Body) Close() error {
	b.finish(false)
	return nil
}

// finish hands the connection on once: to the pool, or closed.
func (b *h1Body) finish(ok bool) {
	end := int32(bodyClosed)
	if ok {
		end = bodyEOF
	}
	if !b.state.CompareAndSwap(bodyReading, end) {
		return
	}
	c := b.c
	// A fired context has poisoned the connection's read deadline.
	stopped := b.stop()
	if ok && stopped && b.reuse && c.br.Buffered() == 0 {
		c.t.putIdle(c)
		return
	}
	c.nc.Close()
}
