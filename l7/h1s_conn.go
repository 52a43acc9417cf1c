package l7

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// One HTTP/1 connection of the h1 server: read a request, run the handler,
// finish the response, again, on one goroutine. The connection is the
// guard's (guard.go), so what is read here has passed the request-hygiene
// checks; the parser (h1s_request.go) relies on that for syntax and still
// checks what it uses.

// Connection states, for Shutdown: an idle connection (between requests,
// nothing read yet) may be closed at once; an active one is waited for.
const (
	connIdle int32 = iota
	connActive
	connClosed // closed by Shutdown or Close, or the serve loop ended
	connHijacked
)

// Buffers are pooled: a connection holds them while it is open (a parked
// connection has ended its serve loop and returned them).
const (
	h1sReadBuf  = 4 << 10
	h1sWriteBuf = 4 << 10
	// h1sPendBuf is what a response of unknown length may buffer before its
	// head is sent: a handler that finishes within it gets a Content-Length
	// instead of chunking (net/http: bufferBeforeChunkingSize).
	h1sPendBuf = 2 << 10
	// h1sMaxDiscard is what the server reads of a request body the handler
	// left unread, to keep the connection (net/http: 256 KiB).
	h1sMaxDiscard = 256 << 10
	// h1sWatchDelay is how long a request runs before the connection is
	// watched for the client going away (see watch): a quick request never
	// pays for a watcher.
	h1sWatchDelay = 20 * time.Millisecond
)

var (
	h1sReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, h1sReadBuf) }}
	h1sWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, h1sWriteBuf) }}
)

type h1conn struct {
	s      *h1Server
	nc     net.Conn // the guarded connection
	remote string
	peer   netip.Addr // remote parsed once, as Entry would per request
	tls    *tls.ConnectionState
	ctx    context.Context // values only: the server and the local address
	state  atomic.Int32

	src srcReader // what br reads: nc, after the watcher's byte
	br  *bufio.Reader
	bw  *bufio.Writer
	out h1out    // what bw writes to: nc, with the stall timeout
	w   h1writer // reused per request: a handler must not keep it

	// The watcher (watch.go part below), guarded by wmu.
	wmu       sync.Mutex
	watchT    *time.Timer
	inHandler bool // the handler runs and its request body is done
	watching  bool
	watchDone chan struct{}
	reqCtx    *h1ctx // the current request's
	gone      bool   // the watcher saw the client go

	// nobody is the h1body of a request without a body: r.Body is
	// http.NoBody then, so only the server uses it (framing).
	nobody h1body
	// nextCtx is the context of the request parseRequest just read.
	nextCtx *h1ctx

	// rdStale: the socket may still carry the read deadline of the wait
	// for a request or of its head, which is not cleared once the head is
	// read; a later read sets the deadline it needs (h1s_body.go, watch).
	rdStale bool
	// rdUser: the handler set a read deadline (http.ResponseController);
	// body reads keep it instead of setting their own, as in net/http.
	rdUser bool

	// bareLF points at the guard's scanner.bareLF: true once a head or
	// trailer line on the connection ended in a bare LF, which the
	// CRLF-only fast path of readHead cannot find the end of; at noLF
	// (false) when nc is not guarded.
	bareLF *bool
	noLF   bool
}

// srcReader is the connection as br reads it: first the byte the watcher
// read ahead, if any.
type srcReader struct {
	nc      net.Conn
	pending bool
	b       [1]byte
}

func (r *srcReader) Read(p []byte) (int, error) {
	if r.pending && len(p) > 0 {
		p[0] = r.b[0]
		r.pending = false
		return 1, nil
	}
	return r.nc.Read(p)
}

func (c *h1conn) setState(st int32) bool {
	for {
		old := c.state.Load()
		if old == connClosed || old == connHijacked {
			return false
		}
		if c.state.CompareAndSwap(old, st) {
			return true
		}
	}
}

// serve runs the request loop until the connection ends.
func (c *h1conn) serve() {
	defer c.end()
	c.src.nc = c.nc
	c.out = h1out{nc: c.nc, d: stallDeadline{stall: int64(c.s.idleTimeout)}}
	c.br = h1sReaders.Get().(*bufio.Reader)
	c.br.Reset(&c.src)
	c.bw = h1sWriters.Get().(*bufio.Writer)
	c.bw.Reset(&c.out)
	s := c.s
	for first := true; ; first = false {
		if !c.awaitRequest(first) {
			return
		}
		if first {
			growStack()
		}
		if s.readHeaderTimeout <= 0 && s.idleTimeout > 0 {
			c.nc.SetReadDeadline(time.Time{})
		} // else readHead sets the header deadline if the head needs it
		req, body, err := c.readRequest(first)
		if err != nil {
			if errors.Is(err, errH2Preface) {
				c.handToH2()
				return
			}
			c.reject(err)
			return
		}
		c.rdUser = false
		if s.readHeaderTimeout > 0 {
			// Not cleared here (a timer update per request): the reads
			// that may follow set their own (rdStale).
			c.rdStale = true
		}
		c.out.startResponse(s.writeTimeout)
		if !c.serveRequest(req, body) {
			return
		}
		// An idle connection keeps neither this request (its head, its
		// h1req) nor the backend's response head.
		c.w.release()
		c.nobody.req = nil
		if !c.setState(connIdle) || s.shuttingDown() {
			return
		}
	}
}

// awaitRequest waits for the first byte of the next request, within the
// idle timeout (the first request: within the header timeout, as in
// net/http); false when the connection ends instead.
func (c *h1conn) awaitRequest(first bool) bool {
	if c.br.Buffered() == 0 {
		d := c.s.idleTimeout
		if first && c.s.readHeaderTimeout > 0 {
			d = c.s.readHeaderTimeout
		}
		switch g, _ := c.nc.(*guardConn); {
		case d > 0 && g != nil:
			g.noteIdleDeadline(time.Now(), d)
		case d > 0:
			c.nc.SetReadDeadline(time.Now().Add(d))
		case c.rdStale:
			c.nc.SetReadDeadline(time.Time{})
		}
		c.rdStale = false
		if c.tls != nil && !first && !c.src.pending {
			// An idle TLS connection (plaintext ones are parked) waits
			// without the 8 KiB of buffers: they go back to the pools
			// until the next request's first byte.
			if !c.awaitByte() {
				return false
			}
		} else {
			if !first {
				// Let the other runnable connections go first: by the
				// time this one reads, a busy client has often sent its
				// next request, which then needs no read that finds
				// nothing, no park and no wake-up (read syscalls per
				// keep-alive request under wrk: about 3.0 → 2.2).
				runtime.Gosched()
			}
			if _, err := c.br.Peek(1); err != nil {
				return false
			}
		}
	}
	return c.setState(connActive)
}

// awaitByte waits for one byte with the buffers released, then takes them
// again; false when the connection ends instead.
func (c *h1conn) awaitByte() bool {
	c.br.Reset(nil)
	h1sReaders.Put(c.br)
	c.bw.Reset(nil)
	h1sWriters.Put(c.bw)
	c.br, c.bw = nil, nil
	for {
		n, err := c.nc.Read(c.src.b[:])
		if n == 1 {
			c.src.pending = true
			break
		}
		if err != nil {
			return false
		}
	}
	c.br = h1sReaders.Get().(*bufio.Reader)
	c.br.Reset(&c.src)
	c.bw = h1sWriters.Get().(*bufio.Writer)
	c.bw.Reset(&c.out)
	return true
}

// serveRequest runs the handler and finishes the response; it reports
// whether the connection may carry another request.
func (c *h1conn) serveRequest(req *http.Request, body *h1body) (keep bool) {
	w := &c.w
	ctx := c.nextCtx // parseRequest's, allocated with the request
	c.nextCtx = nil
	setRequestContext(&req, ctx)
	defer ctx.cancel(context.Canceled)
	c.wmu.Lock()
	c.reqCtx, c.gone = ctx, false
	c.wmu.Unlock()
	body.mu.Lock()
	bodyDone := body.eof
	body.watch = !bodyDone
	body.mu.Unlock()
	if bodyDone {
		c.startWatch()
	}
	ok := c.runHandler(w, req)
	body.handlerDone()
	c.stopWatch()
	if w.hijacked {
		return false
	}
	if !ok {
		return false // a panic: the response cannot be trusted to be whole
	}
	if body.endsConn() {
		// Reading the rest would take too long, the body broke, or the
		// client waits for a 100 Continue that is not coming: this
		// response is the last.
		w.closeAfter = true
	} else if !body.done() && !w.headSent && !body.failed() && !body.discard() {
		// What is left of the body is read before the head goes out (as
		// net/http does), so the head can say whether the connection
		// stays.
		w.closeAfter = true
	}
	if err := w.finish(); err != nil || w.closeAfter || c.gone {
		return false
	}
	if !body.done() {
		return body.discard()
	}
	return true
}

// optionsStar answers "OPTIONS *" as net/http does, without the handler:
// 200, no body (a request body is read, up to 4 KiB).
func optionsStar(w *h1writer, req *http.Request) {
	w.hdr.Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	if n, _ := io.CopyN(io.Discard, req.Body, 4<<10+1); n > 4<<10 {
		w.closeAfter = true
	}
}

// runHandler calls the handler; false if it panicked.
func (c *h1conn) runHandler(w *h1writer, req *http.Request) (ok bool) {
	defer func() {
		if err := recover(); err != nil {
			ok = false
			if err != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.s.log.Error("http: panic serving request", "remote", c.remote, "panic", fmt.Sprint(err), "stack", string(buf))
			}
		}
	}()
	w.reset(c, req)
	if b, ok := req.Body.(*h1body); ok {
		w.expectPending = &b.owed
	}
	if req.RequestURI == "*" && req.Method == http.MethodOptions {
		optionsStar(w, req)
		return true
	}
	c.s.handler.ServeHTTP(w, req)
	return true
}

// reject answers a request the server could not read and ends the
// connection. A read error or timeout gets no answer, as in net/http.
func (c *h1conn) reject(err error) {
	var re *requestError
	if !errors.As(err, &re) {
		return
	}
	c.s.log.Debug("bad HTTP/1 request", "remote", c.remote, "error", re.msg)
	c.out.setFixed(time.Now().Add(5 * time.Second))
	body := fmt.Sprintf("%d %s: %s", re.code, http.StatusText(re.code), re.msg)
	fmt.Fprintf(c.bw, "%sContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		statusLine(re.code, false), len(body), body)
	if c.bw.Flush() == nil {
		c.linger()
	}
}

// linger reads (and drops) what the client already sent, for a moment,
// before the connection is closed: closing with unread input sends a RST
// that can destroy the answer before the client reads it.
func (c *h1conn) linger() {
	c.nc.SetReadDeadline(time.Now().Add(guardLinger))
	io.CopyN(io.Discard, c.nc, guardLingerMax)
}

// end closes the connection unless it was hijacked or handed on, and
// returns the buffers.
func (c *h1conn) end() {
	if c.watchT != nil {
		c.watchT.Stop()
	}
	if c.state.Swap(connClosed) == connHijacked {
		c.state.Store(connHijacked)
		c.s.forget(c)
		return
	}
	if c.nc != nil {
		c.nc.Close()
	}
	c.s.forget(c)
	if c.br != nil {
		c.br.Reset(nil)
		h1sReaders.Put(c.br)
		c.bw.Reset(nil)
		h1sWriters.Put(c.bw)
		c.br, c.bw = nil, nil
	}
}

// handToH2 gives a connection that began with the HTTP/2 preface to the
// HTTP/2 server, with what was read of it.
func (c *h1conn) handToH2() {
	pre := make([]byte, c.br.Buffered())
	c.br.Read(pre)
	nc := &replayConn{Conn: c.nc, pre: pre}
	c.state.Store(connHijacked) // not ours to close any more
	go c.s.h2.serve(nc)
}

// replayConn is a connection whose first bytes were already read.
type replayConn struct {
	net.Conn
	pre []byte
}

func (r *replayConn) Read(p []byte) (int, error) {
	if len(r.pre) > 0 {
		n := copy(p, r.pre)
		r.pre = r.pre[n:]
		return n, nil
	}
	return r.Conn.Read(p)
}

// Watching for the client going away.
//
// A handler waiting on a backend should stop when its client has gone (a
// long poll, a slow upload's answer): net/http reads one byte in the
// background for every request to learn that. Here the connection is
// watched only once a request has run h1sWatchDelay with its body read:
// quick requests, nearly all of them, never start a watcher.

func (c *h1conn) startWatch() {
	c.wmu.Lock()
	c.inHandler = true
	if c.watchT == nil {
		c.watchT = time.AfterFunc(h1sWatchDelay, c.watch)
	} else {
		c.watchT.Reset(h1sWatchDelay)
	}
	c.wmu.Unlock()
}

// watch reads ahead one byte while the handler runs: an error (the client
// closed or reset) cancels the request; a byte (a pipelined request) is
// kept for the next read.
//
// One watcher at a time: a request's timer can fire just as its request
// ends (stopWatch finds no watcher yet) and reach wmu only after the next
// request's startWatch; it then watches for that request, whose own timer
// must not start a second reader of the connection (two would each keep a
// byte in the one slot, losing one).
func (c *h1conn) watch() {
	c.wmu.Lock()
	if !c.inHandler || c.watching || c.src.pending || c.br == nil || c.br.Buffered() > 0 {
		c.wmu.Unlock()
		return
	}
	// The request's head deadline may still be on the socket (rdStale):
	// the watch lasts as long as the handler. Cleared under wmu, so that
	// stopWatch's wake-up deadline always comes after.
	c.nc.SetReadDeadline(time.Time{})
	c.watching = true
	done := make(chan struct{})
	c.watchDone = done
	c.wmu.Unlock()

	n, err := c.nc.Read(c.src.b[:])

	c.wmu.Lock()
	c.watching = false
	if n == 1 {
		c.src.pending = true
	} else if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		c.gone = true
		if c.reqCtx != nil {
			c.reqCtx.cancel(context.Canceled)
		}
	}
	c.wmu.Unlock()
	close(done)
}

// stopWatch ends the watch of the request that finished, waiting for a
// watcher that is reading.
func (c *h1conn) stopWatch() {
	c.wmu.Lock()
	c.inHandler = false
	c.reqCtx = nil
	if c.watchT != nil {
		c.watchT.Stop()
	}
	watching, done := c.watching, c.watchDone
	c.wmu.Unlock()
	if !watching {
		return
	}
	c.nc.SetReadDeadline(aLongTimeAgo)
	<-done
	c.nc.SetReadDeadline(time.Time{})
}
