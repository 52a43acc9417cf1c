package l7

import (
	"bufio"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// h1writer is the http.ResponseWriter of the h1 server. It writes the
// response head straight into the connection's buffered writer once the
// framing is known: the handler's Content-Length; else, if the handler
// finishes within h1sPendBuf bytes, a Content-Length of what it wrote;
// else chunked (HTTP/1.1) or until close (HTTP/1.0) — net/http's rules,
// with its behaviour for HEAD, 1xx, 204 and 304, trailers (declared by
// "Trailer" or set with http.TrailerPrefix), Date, and Content-Type
// sniffing of the first bytes when the handler set none.
type h1writer struct {
	mu  sync.Mutex // body reads may send 100 Continue from another goroutine
	c   *h1conn
	hdr http.Header

	status      int
	wroteHeader bool // the handler chose the status
	headSent    bool // the head is in bw
	sentCont    bool // 100 Continue (or another 1xx) went out
	cl          int64
	written     int64
	chunked     bool
	headReq     bool // HEAD: the body is dropped
	http10      bool
	closeAfter  bool
	hijacked    bool
	trailers    []string // declared trailer keys, canonical
	// expectPending is the request body's: a 100 Continue is still owed.
	expectPending *atomic.Bool

	pend    []byte            // body bytes held before the head (unknown length)
	pendBuf *[h1sPendBuf]byte // pend's array, from pendBufs while held
}

// pendBufs holds the arrays of responses of unknown length waiting for
// their head (h1writer.pend).
var pendBufs = sync.Pool{New: func() any { return new([h1sPendBuf]byte) }}

// releasePend returns pend's array once its bytes are written.
func (w *h1writer) releasePend() {
	if w.pendBuf != nil {
		pendBufs.Put(w.pendBuf)
		w.pendBuf, w.pend = nil, nil
	}
}

var (
	_ http.ResponseWriter = (*h1writer)(nil)
	_ http.Flusher        = (*h1writer)(nil)
	_ http.Hijacker       = (*h1writer)(nil)
)

func (w *h1writer) reset(c *h1conn, req *http.Request) {
	if w.hdr == nil {
		w.hdr = make(http.Header, 8)
	} else {
		clear(w.hdr)
	}
	w.releasePend() // a hijack or a panic left it held
	w.c = c
	w.status, w.cl, w.written = http.StatusOK, -1, 0
	w.wroteHeader, w.headSent, w.sentCont, w.chunked, w.hijacked = false, false, false, false, false
	w.headReq, w.http10, w.closeAfter = req.Method == http.MethodHead, req.ProtoMinor == 0, req.Close
	w.trailers = w.trailers[:0]
	w.expectPending = nil
}

// release lets go of the finished response's fields, which hold the
// backend's head (their values are substrings of it): an idle keep-alive
// connection does not keep it until its next request.
func (w *h1writer) release() {
	clear(w.hdr)
	clear(w.trailers[:cap(w.trailers)])
	w.trailers = w.trailers[:0]
}

func (w *h1writer) Header() http.Header { return w.hdr }

func (w *h1writer) WriteHeader(code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writeHeader(code)
}

func (w *h1writer) writeHeader(code int) {
	if w.hijacked || w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.informational(code)
		return
	}
	w.wroteHeader = true
	w.status = code
	if code == http.StatusSwitchingProtocols {
		// Without Hijack nothing can follow a 101 here.
		w.closeAfter = true
	}
	if v := w.hdr["Content-Length"]; len(v) > 0 {
		if n, err := strconv.ParseInt(v[0], 10, 64); err == nil && n >= 0 {
			w.cl = n
		} else {
			delete(w.hdr, "Content-Length")
		}
	}
}

// informational sends a 1xx response with the current header (net/http
// does so for 103 Early Hints too); an HTTP/1.0 client gets none.
func (w *h1writer) informational(code int) {
	if w.http10 || w.headSent {
		return
	}
	if code == http.StatusContinue {
		if w.sentCont {
			return
		}
		w.sentCont = true
	}
	bw := w.c.bw
	bw.WriteString(statusLine(code, false))
	if code != http.StatusContinue {
		writeFields(bw, w.hdr, nil)
	}
	bw.WriteString("\r\n")
	bw.Flush()
}

// sendContinue answers an Expect: 100-continue before the first body read,
// unless the response has begun.
func (w *h1writer) sendContinue() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.headSent && !w.hijacked {
		w.informational(http.StatusContinue)
	}
}

func (w *h1writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.writeHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.cl >= 0 && w.written+int64(len(p)) > w.cl {
		// As net/http: nothing of a write past the declared length; the
		// short body then closes the connection (finish).
		return 0, http.ErrContentLength
	}
	var err error
	w.written += int64(len(p))
	if !w.headSent {
		if w.cl < 0 && len(w.pend)+len(p) <= h1sPendBuf {
			if w.pend == nil {
				// Most responses state their length and never need it.
				w.pendBuf = pendBufs.Get().(*[h1sPendBuf]byte)
				w.pend = w.pendBuf[:0]
			}
			w.pend = append(w.pend, p...)
			return len(p), err
		}
		w.sendHead(false, p)
	}
	if werr := w.body(p); werr != nil {
		return 0, werr
	}
	return len(p), err
}

// body writes p (and first what pend holds) in the response's framing.
func (w *h1writer) body(p []byte) error {
	if w.headReq {
		w.releasePend()
		return nil
	}
	bw := w.c.bw
	if len(w.pend) > 0 {
		pend := w.pend
		w.pend = nil
		err := w.body(pend) // bw copies the bytes
		w.releasePend()
		if err != nil {
			return err
		}
	}
	if len(p) == 0 {
		return nil
	}
	if w.chunked {
		var hex [16]byte
		bw.Write(strconv.AppendInt(hex[:0], int64(len(p)), 16))
		bw.WriteString("\r\n")
		bw.Write(p)
		_, err := bw.WriteString("\r\n")
		return err
	}
	_, err := bw.Write(p)
	return err
}

func bodyAllowed(code int) bool {
	return code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified
}

// sendHead writes the status line and fields. done says the handler has
// returned: a body of unknown length is then all in pend. first is the
// body's first bytes when pend holds none, for Content-Type sniffing.
func (w *h1writer) sendHead(done bool, first []byte) {
	w.headSent = true
	h := w.hdr
	if !w.wroteHeader {
		w.writeHeader(http.StatusOK)
	}
	allowed := bodyAllowed(w.status)
	w.trailers = w.trailers[:0]
	for _, v := range h["Trailer"] {
		for k := range strings.SplitSeq(v, ",") {
			if k = http.CanonicalHeaderKey(strings.TrimSpace(k)); k != "" {
				w.trailers = append(w.trailers, k)
			}
		}
	}
	// A handler's own Transfer-Encoding: chunked asks for chunking (as in
	// net/http); the field itself is always this writer's to set.
	te := h["Transfer-Encoding"]
	delete(h, "Transfer-Encoding")
	wantChunked := len(te) > 0 && strings.EqualFold(strings.TrimSpace(te[0]), "chunked")
	var setCL, setTE bool
	switch {
	case !allowed:
		// net/http's rule: no framing fields on a response without a
		// body, and no Content-Type on a 304.
		delete(h, "Transfer-Encoding")
		delete(h, "Content-Length")
		if w.status == http.StatusNotModified {
			delete(h, "Content-Type")
		}
		w.cl = -1
	case w.headReq:
		if w.cl < 0 && done && len(w.pend) > 0 && len(w.trailers) == 0 && len(te) == 0 {
			w.cl = int64(len(w.pend))
			setCL = true
		}
	case wantChunked && !w.http10:
		delete(h, "Content-Length")
		w.cl = -1
		setTE = true
	case len(w.trailers) > 0:
		// Trailers need chunking; HTTP/1.0 has none, so its body runs
		// until the connection closes (net/http's choice too).
		delete(h, "Content-Length")
		w.cl = -1
		if w.http10 {
			w.closeAfter = true
		} else {
			setTE = true
		}
	case w.cl >= 0:
	case done:
		w.cl = int64(len(w.pend))
		setCL = true
	case w.http10:
		w.closeAfter = true
	default:
		setTE = true
	}
	if w.expectPending != nil && w.expectPending.Load() {
		// The client may or may not send its body now that the answer
		// came without a 100 Continue: this connection cannot go on.
		w.closeAfter = true
	}
	if setTE {
		w.chunked = true
	}
	if w.c.s.shuttingDown() {
		w.closeAfter = true
	}
	if !w.closeAfter {
		if v := h["Connection"]; len(v) > 0 && httpguts.HeaderValuesContainsToken(v, "close") {
			w.closeAfter = true
		}
	}
	if len(w.pend) > 0 {
		first = w.pend
	}
	if _, ok := h["Content-Type"]; !ok && allowed && len(first) > 0 && len(te) == 0 {
		h["Content-Type"] = []string{http.DetectContentType(first)}
	}

	bw := w.c.bw
	bw.WriteString(statusLine(w.status, w.http10))
	writeFields(bw, h, w.trailers)
	if _, ok := h["Date"]; !ok {
		bw.WriteString("Date: ")
		bw.WriteString(httpDate())
		bw.WriteString("\r\n")
	}
	if setCL {
		var num [20]byte
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(num[:0], w.cl, 10))
		bw.WriteString("\r\n")
	}
	if w.chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	switch {
	case w.closeAfter:
		if _, ok := h["Connection"]; !ok {
			bw.WriteString("Connection: close\r\n")
		}
	case w.http10:
		bw.WriteString("Connection: keep-alive\r\n")
	}
	bw.WriteString("\r\n")
}

// writeFields writes h sorted by name (a stable order, as net/http's),
// leaving out trailers (declared ones, and http.TrailerPrefix keys) and
// fields whose names are invalid; line breaks in values become spaces, so a
// value cannot start a field of its own.
func writeFields(bw *bufio.Writer, h http.Header, trailers []string) {
	var stack [24]string
	keys := stack[:0]
	for k := range h {
		if !slices.Contains(trailers, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !strings.HasPrefix(k, http.TrailerPrefix) {
			writeField(bw, k, h[k])
		}
	}
}

// writeField writes one field line per value; a name that is not a valid
// field name is left out.
func writeField(bw *bufio.Writer, name string, values []string) {
	if !httpguts.ValidHeaderFieldName(name) {
		return
	}
	for _, v := range values {
		bw.WriteString(name)
		bw.WriteString(": ")
		writeValue(bw, v)
		bw.WriteString("\r\n")
	}
}

// hasLineBreakOrNUL reports a CR, LF or NUL in v: one compare per byte
// for nearly every byte, where strings.IndexAny with a three-byte set
// searched v once per byte of the set.
func hasLineBreakOrNUL(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= '\r' && (c == '\r' || c == '\n' || c == 0) {
			return true
		}
	}
	return false
}

func writeValue(bw *bufio.Writer, v string) {
	v = strings.TrimSpace(v)
	if !hasLineBreakOrNUL(v) {
		bw.WriteString(v)
		return
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' || c == '\n' || c == 0 {
			c = ' '
		}
		bw.WriteByte(c)
	}
}

// finish completes the response after the handler returned: head if not
// sent, the last chunk with trailers, and a flush.
func (w *h1writer) finish() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.hijacked {
		return nil
	}
	if !w.headSent {
		w.sendHead(true, nil)
	}
	if err := w.body(nil); err != nil {
		return err
	}
	bw := w.c.bw
	if w.chunked && !w.headReq {
		bw.WriteString("0\r\n")
		w.writeTrailers(bw)
		bw.WriteString("\r\n")
	}
	if w.cl >= 0 && w.written != w.cl && !w.headReq && bodyAllowed(w.status) {
		// The framing promised more than was sent: the client can only
		// learn it from the connection closing.
		w.closeAfter = true
	}
	return bw.Flush()
}

func (w *h1writer) writeTrailers(bw *bufio.Writer) {
	for _, k := range w.trailers {
		writeField(bw, k, w.hdr[k])
	}
	for k, vv := range w.hdr {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			writeField(bw, name, vv)
		}
	}
}

// Flush sends the head (chunked when the length is unknown) and whatever
// is buffered.
func (w *h1writer) Flush() { w.FlushError() }

// FlushError is Flush for http.ResponseController.
func (w *h1writer) FlushError() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.hijacked {
		return http.ErrHijacked
	}
	if !w.headSent {
		w.sendHead(false, nil)
	}
	if err := w.body(nil); err != nil {
		return err
	}
	return w.c.bw.Flush()
}

// Hijack hands the connection over, with what the server has buffered of
// it (a pending response head is flushed first).
func (w *h1writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	c := w.c
	if w.headSent {
		if err := c.bw.Flush(); err != nil {
			return nil, nil, err
		}
	}
	c.stopWatch()
	if !c.setState(connHijacked) {
		return nil, nil, net.ErrClosed
	}
	w.hijacked = true
	c.out.fixed = true // the hijacker's deadlines from now
	c.nc.SetDeadline(time.Time{})
	return c.nc, bufio.NewReadWriter(c.br, c.bw), nil
}

// SetReadDeadline and SetWriteDeadline serve http.ResponseController.
func (w *h1writer) SetReadDeadline(t time.Time) error {
	// Body reads keep it (rdUser); the wait for the next request
	// replaces it (rdStale), as net/http's does.
	w.c.rdStale, w.c.rdUser = true, true
	return w.c.nc.SetReadDeadline(t)
}
func (w *h1writer) SetWriteDeadline(t time.Time) error { return w.c.out.setFixed(t) }

// EnableFullDuplex serves http.ResponseController: this server lets a
// handler read the request body after writing the response anyway.
func (w *h1writer) EnableFullDuplex() error { return nil }
