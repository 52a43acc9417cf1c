package l7

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
)

// h2Stream is a stream whose handler runs. It is in its connection's
// streams map from its HEADERS until its handler finished and the
// response ended (or until either side reset it).
type h2Stream struct {
	c  *h2Conn
	id uint32
	// ctx is the request's: cancelled as the stream ends early, or as
	// its handler returns. The HTTP/1 server's kind: no allocation of
	// its own, and the upstream transport wakes on it without one
	// (h1s_ctx.go).
	ctx h1ctx
	// The request, its URL and the Entry's reqInfo (h1ctx.takeInfo) are
	// allocated with the stream: one allocation instead of four.
	hreq http.Request
	url  url.URL
	info reqInfo
	w    h2Writer
	req  *http.Request // for the worker that runs the handler
	h    http.Handler

	// Under c.mu.
	sendWindow int64
	recvWindow int64 // what the client may still send on the stream
	recvUnsent int64 // stream credit consumed, not yet returned
	remoteDone bool  // END_STREAM came (or the stream ended)
	err        error // why the stream ended early; nil while it runs
	declLen    int64 // the request's Content-Length; -1: none
	got        int64 // request body bytes received
	body       h2Body
	trailer    http.Header // the request's, as declared; filled by its trailers
	// readDeadline: the handler's (http.ResponseController); zero: none.
	readDeadline time.Time
	wtimer       *time.Timer // resets the stream at the write deadline
	start        time.Time   // when it opened, with timeouts.write only
	// lastWrite: when the handler last began a write, Unix ns: a body
	// read waits out timeouts.idle only while no write began either.
	lastWrite atomic.Int64

	// Under c.wmu.
	wdone     bool // END_STREAM or RST_STREAM went out: nothing more may
	rstSent   bool
	finalSent bool // the final response head went out
}

// processHeaders opens a stream, or takes a stream's trailers.
func (c *h2Conn) processHeaders(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if id%2 != 1 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	c.mu.Lock()
	if st := c.streams[id]; st != nil {
		defer c.mu.Unlock()
		if st.remoteDone {
			c.resetLocked(st, http2.ErrCodeStreamClosed, true)
			return nil
		}
		return c.trailersLocked(st, f)
	}
	if id <= c.lastID {
		c.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	c.lastID = id
	switch {
	case c.goingAway || c.closed:
		c.mu.Unlock()
		return c.rst(id, http2.ErrCodeRefusedStream)
	case f.HasPriority() && f.Priority.StreamDep == id:
		c.mu.Unlock()
		return c.rst(id, http2.ErrCodeProtocol)
	case len(c.streams) >= c.s.maxStreams:
		c.mu.Unlock()
		return c.rst(id, http2.ErrCodeRefusedStream)
	case c.handlers >= 4*c.s.maxStreams:
		// Handlers of streams already reset that do not end: x/net's
		// limit too.
		c.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
	}
	// The stream is counted from here, as lastID says it is served: a
	// GOAWAY sent meanwhile (Shutdown, the idle timer) names it, so the
	// connection must not close under it.
	c.handlers++
	c.mu.Unlock()

	st := &h2Stream{c: c, id: id, declLen: -1, recvWindow: h2RecvWindow}
	req, code := c.newRequest(st, f)
	if code != http2.ErrCodeNo {
		c.mu.Lock()
		c.handlers--
		if len(c.streams) == 0 && c.handlers == 0 {
			c.idleLocked() // the idle timer may have fired meanwhile
			c.closeIfDoneLocked()
		}
		c.mu.Unlock()
		return c.rst(id, code)
	}
	h := c.s.handler
	switch {
	case f.Truncated:
		h = h2HeadersTooLarge
	case !validMethod(req.Method):
		// An h1ctx tells the Entry that the method was checked.
		h = h2BadRequest
	}
	st.ctx.Context, st.ctx.peer, st.ctx.info = context.Background(), c.peer, &st.info
	setRequestContext(&req, &st.ctx)
	st.w.init(st, req)
	c.mu.Lock()
	st.sendWindow = c.initialWindow
	st.remoteDone = f.StreamEnded()
	c.streams[id] = st
	if wt := c.s.writeTimeout; wt > 0 {
		st.start = time.Now()
		st.wtimer = time.AfterFunc(wt, st.writeTimedOut)
	}
	c.mu.Unlock()
	st.req, st.h = req, h
	c.s.workers.run(c.s.h1, connJob{h2: st})
	return nil
}

var h2BadRequest = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusBadRequest)
})

var h2HeadersTooLarge = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "Request Header Fields Too Large", http.StatusRequestHeaderFieldsTooLarge)
})

// rst resets a stream that has no handler.
func (c *h2Conn) rst(id uint32, code http2.ErrCode) error {
	return c.writeFrames(func() error { return c.wfr.WriteRSTStream(id, code) })
}

// newRequest builds the stream's request from its HEADERS, or returns the
// code to reset it with (RFC 9113 8.1-8.3).
func (c *h2Conn) newRequest(st *h2Stream, f *http2.MetaHeadersFrame) (*http.Request, http2.ErrCode) {
	var method, path, scheme, authority string
	for _, hf := range f.PseudoFields() {
		switch hf.Name {
		case ":method":
			method = hf.Value
		case ":path":
			path = hf.Value
		case ":scheme":
			scheme = hf.Value
		case ":authority":
			authority = hf.Value
		default:
			// :protocol: extended CONNECT is not offered; the Framer
			// refused the rest.
			return nil, http2.ErrCodeProtocol
		}
	}
	connect := method == http.MethodConnect
	if connect {
		if path != "" || scheme != "" || authority == "" {
			return nil, http2.ErrCodeProtocol
		}
	} else if method == "" || path == "" || scheme != "http" && scheme != "https" ||
		path[0] != '/' && path != "*" {
		// :path is origin-form or "*" (RFC 9113 8.3.1): an absolute URI
		// there would give the request a URL.Host of its own beside
		// :authority. Other schemes: x/net refuses them too.
		return nil, http2.ErrCodeProtocol
	}
	regular := f.RegularFields()
	hdr := make(http.Header, len(regular))
	for _, hf := range regular {
		k := reqKey(hf.Name)
		hdr[k] = append(hdr[k], hf.Value)
	}
	for _, k := range h2ConnHeaders {
		if _, ok := hdr[k]; ok {
			return nil, http2.ErrCodeProtocol
		}
	}
	if te := hdr["Te"]; len(te) > 1 || len(te) == 1 && te[0] != "trailers" {
		return nil, http2.ErrCodeProtocol
	}
	if ck := hdr["Cookie"]; len(ck) > 1 {
		hdr["Cookie"] = []string{strings.Join(ck, "; ")} // RFC 9113 8.2.3
	}
	// A Host field must agree with :authority (RFC 9113 8.3.1); the
	// authority must be a valid host, with no userinfo for http(s): it is
	// what routes the request and the Host the backend gets (x/net's
	// checks).
	switch host := hdr["Host"]; {
	case len(host) > 1:
		return nil, http2.ErrCodeProtocol
	case len(host) == 1 && authority == "":
		authority = host[0]
	case len(host) == 1 && host[0] != authority:
		return nil, http2.ErrCodeProtocol
	}
	delete(hdr, "Host") // as net/http's: the request's Host says it
	if strings.IndexByte(authority, '@') >= 0 && !connect || authority != "" && !httpguts.ValidHostHeader(authority) {
		return nil, http2.ErrCodeProtocol
	}
	if cl := hdr["Content-Length"]; len(cl) > 0 {
		n, err := strconv.ParseUint(cl[0], 10, 63)
		if err != nil || len(cl) > 1 && !allSame(cl) {
			return nil, http2.ErrCodeProtocol
		}
		st.declLen = int64(n)
		if f.StreamEnded() && n != 0 {
			return nil, http2.ErrCodeProtocol
		}
	}
	uri := path
	switch {
	case connect:
		st.url.Host, uri = authority, authority
	case path[0] == '/' && plainPath(path):
		// What url.ParseRequestURI would return, without its allocation
		// (as the HTTP/1 server's parseTarget).
		p, query, hasQuery := strings.Cut(path, "?")
		st.url.Path, st.url.RawQuery, st.url.ForceQuery = p, query, hasQuery && query == ""
	default:
		u, err := url.ParseRequestURI(path)
		if err != nil {
			return nil, http2.ErrCodeProtocol
		}
		st.url = *u
	}
	r := &st.hreq
	*r = http.Request{
		Method:     method,
		URL:        &st.url,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     hdr,
		Host:       authority,
		RemoteAddr: c.remote,
		RequestURI: uri,
		TLS:        c.tls,
	}
	for _, v := range hdr["Trailer"] {
		for _, k := range strings.Split(v, ",") {
			k = http.CanonicalHeaderKey(textTrim(k))
			switch k {
			case "", "Transfer-Encoding", "Trailer", "Content-Length":
				continue
			}
			if st.trailer == nil {
				st.trailer = make(http.Header)
			}
			st.trailer[k] = nil
		}
	}
	r.Trailer = st.trailer
	delete(hdr, "Trailer") // net/http's servers take it out too
	if f.StreamEnded() {
		r.ContentLength, r.Body = 0, http.NoBody
	} else {
		r.ContentLength = st.declLen
		st.body.st = st
		st.body.expect = len(hdr["Expect"]) == 1 && strings.EqualFold(hdr["Expect"][0], "100-continue")
		r.Body = &st.body
	}
	return r, http2.ErrCodeNo
}

// h2ConnHeaders are the connection-specific fields a request may not
// carry (RFC 9113 8.2.2).
var h2ConnHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade"}

func allSame(vs []string) bool {
	for _, v := range vs[1:] {
		if v != vs[0] {
			return false
		}
	}
	return true
}

func textTrim(s string) string { return strings.Trim(s, " \t") }

// trailersLocked takes the trailers that end a request body.
func (c *h2Conn) trailersLocked(st *h2Stream, f *http2.MetaHeadersFrame) error {
	if !f.StreamEnded() || len(f.PseudoFields()) > 0 {
		c.resetLocked(st, http2.ErrCodeProtocol, true)
		return nil
	}
	for _, hf := range f.RegularFields() {
		k := reqKey(hf.Name)
		if st.trailer == nil || !httpguts.ValidTrailerHeader(k) {
			continue // undeclared: dropped, as x/net drops them
		}
		if _, ok := st.trailer[k]; ok {
			st.trailer[k] = append(st.trailer[k], hf.Value)
		}
	}
	return c.endBodyLocked(st)
}

// endBodyLocked: END_STREAM came.
func (c *h2Conn) endBodyLocked(st *h2Stream) error {
	if st.declLen >= 0 && st.got != st.declLen {
		c.resetLocked(st, http2.ErrCodeProtocol, true)
		return nil
	}
	st.remoteDone = true
	st.body.eof = true
	st.body.signal()
	return nil
}

// processData takes a DATA frame: its bytes count against both windows
// and join the stream's body.
func (c *h2Conn) processData(f *http2.DataFrame) error {
	id, n := f.StreamID, int64(f.Length)
	c.mu.Lock()
	if n > c.recvWindow {
		c.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	c.recvWindow -= n
	st := c.streams[id]
	if st == nil || st.remoteDone {
		// Not read by anyone: the connection's credit goes back at once.
		conn := c.creditLocked(nil, n, false)
		c.mu.Unlock()
		c.sendCredit(0, conn, 0)
		if id > c.lastID {
			return http2.ConnectionError(http2.ErrCodeProtocol) // an idle stream
		}
		c.streamError(id, http2.ErrCodeStreamClosed)
		return nil
	}
	if n > st.recvWindow {
		conn := c.creditLocked(nil, n, false)
		c.resetLocked(st, http2.ErrCodeFlowControl, true)
		c.mu.Unlock()
		c.sendCredit(0, conn, 0)
		return nil
	}
	st.recvWindow -= n
	data := f.Data()
	if pad := n - int64(len(data)); pad > 0 {
		n -= pad
		conn, strm := c.creditLocked(st, pad, false), st.recvUnsentTake(false)
		defer c.sendCredit(id, conn, strm)
	}
	if st.declLen >= 0 && st.got+int64(len(data)) > st.declLen {
		conn := c.creditLocked(nil, n, false)
		c.resetLocked(st, http2.ErrCodeProtocol, true)
		c.mu.Unlock()
		c.sendCredit(0, conn, 0)
		return nil
	}
	st.got += int64(len(data))
	var conn int64
	if st.body.closed {
		conn = c.creditLocked(nil, n, false)
	} else if len(data) > 0 {
		st.body.buf = append(st.body.buf, data...)
		st.body.signal()
	}
	var err error
	if f.StreamEnded() {
		err = c.endBodyLocked(st)
	}
	c.mu.Unlock()
	c.sendCredit(0, conn, 0)
	return err
}

// creditLocked counts n bytes consumed on the connection (and on st, if
// not nil) and returns the connection credit to send now, if any; force
// sends whatever is owed. The stream's is taken with recvUnsentTake.
func (c *h2Conn) creditLocked(st *h2Stream, n int64, force bool) int64 {
	c.recvUnsent += n
	if st != nil {
		st.recvUnsent += n
	}
	if c.recvUnsent == 0 || !force && c.recvUnsent < h2UpdateMin {
		return 0
	}
	inc := c.recvUnsent
	c.recvUnsent = 0
	c.recvWindow += inc
	return inc
}

// recvUnsentTake returns the stream credit to send now, if any.
func (st *h2Stream) recvUnsentTake(force bool) int64 {
	if st.remoteDone || st.recvUnsent == 0 || !force && st.recvUnsent < h2UpdateMin {
		return 0
	}
	inc := st.recvUnsent
	st.recvUnsent = 0
	st.recvWindow += inc
	return inc
}

// sendCredit writes the WINDOW_UPDATEs owed, outside mu.
func (c *h2Conn) sendCredit(id uint32, conn, strm int64) {
	if conn == 0 && strm == 0 {
		return
	}
	c.writeFrames(func() error {
		if conn > 0 {
			if err := c.wfr.WriteWindowUpdate(0, uint32(conn)); err != nil {
				return err
			}
		}
		if strm > 0 {
			return c.wfr.WriteWindowUpdate(id, uint32(strm))
		}
		return nil
	})
}

// resetLocked ends st early: its handler's context is cancelled, its
// waiting writes and body reads fail. send: the server resets it (a
// stream error), else the client did.
func (c *h2Conn) resetLocked(st *h2Stream, code http2.ErrCode, send bool) {
	c.wmu.Lock()
	st.wdone = true
	if send && !st.rstSent {
		st.rstSent = true
		c.writeLocked(func() error { return c.wfr.WriteRSTStream(st.id, code) })
	}
	c.wmu.Unlock()
	c.endLocked(st, http2.StreamError{StreamID: st.id, Code: code})
}

// endLocked takes st off the connection: err says why its body and
// writes fail from now on (nil: it ended well).
func (c *h2Conn) endLocked(st *h2Stream, err error) {
	if _, ok := c.streams[st.id]; !ok {
		return
	}
	delete(c.streams, st.id)
	if err != nil && st.err == nil {
		st.err = err
		st.ctx.cancel(context.Canceled)
	}
	if st.wtimer != nil {
		st.wtimer.Stop()
	}
	st.remoteDone = true
	// What the handler never read goes back to the connection, now: the
	// client may have filled the connection's window with it, and then
	// no DATA comes whose credit would carry it.
	if n := int64(len(st.body.buf) - st.body.off); n > 0 && !c.closed {
		if inc := c.creditLocked(nil, n, false); inc > 0 {
			c.wmu.Lock()
			c.writeLocked(func() error { return c.wfr.WriteWindowUpdate(0, uint32(inc)) })
			c.wmu.Unlock()
		}
	}
	st.body.buf, st.body.off = nil, 0
	st.body.signal()
	c.flow.Broadcast()
}

// writeTimedOut resets the stream at its write deadline (timeouts.write,
// or the handler's own), as x/net does.
func (st *h2Stream) writeTimedOut() {
	c := st.c
	c.mu.Lock()
	if c.streams[st.id] == st {
		c.resetLocked(st, http2.ErrCodeInternal, true)
	}
	c.mu.Unlock()
}
