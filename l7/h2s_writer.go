package l7

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// h2Writer is a stream's http.ResponseWriter, with net/http's rules (as
// the HTTP/1 server's h1writer): a response the handler ends within
// h2BufSize bytes gets a Content-Length of what it wrote and goes out as
// one HEADERS and one DATA frame; larger ones stream. HEAD, 1xx, 204 and
// 304, trailers (declared by "Trailer" or set with http.TrailerPrefix),
// Date and Content-Type sniffing as net/http has them. Only the
// handler's goroutine uses it (as net/http's); the stream's state it
// shares with the conn is under the conn's locks.
type h2Writer struct {
	st   *h2Stream
	hdr  http.Header
	head bool // HEAD: the body is dropped

	status      int
	wroteHeader bool // the handler chose the status
	sentHeader  bool // the HEADERS went out
	cl          int64
	written     int64
	trailers    []string // declared trailer keys, canonical
	buf         []byte   // body bytes held before the HEADERS, or since the last flush
	headSniff   []byte   // HEAD: the first bytes written, for the Content-Type
	bufArr      *[h2BufSize]byte
	date        [1]string
	notify      chan bool
}

// h2BufSize is how much of a response is held before it streams: as
// x/net's per-stream buffer.
const h2BufSize = 4 << 10

var h2Bufs = sync.Pool{New: func() any { return new([h2BufSize]byte) }}

func (w *h2Writer) init(st *h2Stream, r *http.Request) {
	w.st = st
	w.hdr = make(http.Header, 8)
	w.head = r.Method == http.MethodHead
	w.status, w.cl = http.StatusOK, -1
}

var (
	_ http.ResponseWriter = (*h2Writer)(nil)
	_ http.Flusher        = (*h2Writer)(nil)
	_ http.CloseNotifier  = (*h2Writer)(nil)
	_ http.Pusher         = (*h2Writer)(nil)
)

func (w *h2Writer) Header() http.Header { return w.hdr }

func (w *h2Writer) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 {
		if code != http.StatusSwitchingProtocols { // no 101 in HTTP/2
			w.st.sendHead(code, w.hdr, false, nil, nil)
		}
		return
	}
	w.wroteHeader = true
	w.status = code
	if v := w.hdr["Content-Length"]; len(v) > 0 {
		if n, err := strconv.ParseInt(v[0], 10, 64); err == nil && n >= 0 {
			w.cl = n
		} else {
			delete(w.hdr, "Content-Length")
		}
	}
	for _, v := range w.hdr["Trailer"] {
		for k := range strings.SplitSeq(v, ",") {
			if k = http.CanonicalHeaderKey(textTrim(k)); k != "" {
				w.trailers = append(w.trailers, k)
			}
		}
	}
	if _, ok := w.hdr["Date"]; !ok {
		w.date[0] = httpDate()
		w.hdr["Date"] = w.date[:]
	}
}

// continue100 answers Expect: 100-continue as the body is first read
// (maybe on another goroutine than the handler's), unless the final head
// went out.
func (w *h2Writer) continue100() {
	st := w.st
	c := st.c
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if st.wdone || st.finalSent {
		return
	}
	c.writeLocked(func() error {
		c.encodeLocked(http.StatusContinue, nil, nil, nil)
		return c.writeHeadersLocked(st.id, false)
	})
}

func (w *h2Writer) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.st.c.s.idleTimeout > 0 {
		w.st.lastWrite.Store(time.Now().UnixNano())
	}
	if w.cl >= 0 && w.written+int64(len(p)) > w.cl {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if w.head {
		// HEAD gets GET's Content-Type (RFC 9110 9.3.2; x/net and net/http
		// sniff it too): keep what sniffing reads.
		if !w.sentHeader && len(w.headSniff) < h2SniffLen {
			w.headSniff = append(w.headSniff, p[:min(len(p), h2SniffLen-len(w.headSniff))]...)
		}
		return len(p), nil
	}
	if len(w.buf)+len(p) <= h2BufSize {
		if w.bufArr == nil {
			w.bufArr = h2Bufs.Get().(*[h2BufSize]byte)
			w.buf = w.bufArr[:0]
		}
		w.buf = append(w.buf, p...)
		return len(p), nil
	}
	if err := w.flushBuf(p); err != nil {
		return 0, err
	}
	if err := w.st.sendData(p, false); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *h2Writer) WriteString(s string) (int, error) {
	if len(w.buf)+len(s) <= h2BufSize && w.wroteHeader && !w.head && bodyAllowed(w.status) {
		if w.cl >= 0 && w.written+int64(len(s)) > w.cl {
			return 0, http.ErrContentLength
		}
		if w.bufArr == nil {
			w.bufArr = h2Bufs.Get().(*[h2BufSize]byte)
			w.buf = w.bufArr[:0]
		}
		if w.st.c.s.idleTimeout > 0 {
			w.st.lastWrite.Store(time.Now().UnixNano())
		}
		w.written += int64(len(s))
		w.buf = append(w.buf, s...)
		return len(s), nil
	}
	return w.Write([]byte(s))
}

// flushBuf sends the HEADERS if not yet sent (sniffing the type from the
// held bytes, or from next when none are held), then what is held.
func (w *h2Writer) flushBuf(next []byte) error {
	if !w.sentHeader {
		sniff := w.buf
		if len(sniff) == 0 {
			sniff = next
		}
		if w.head {
			sniff = w.headSniff
		}
		w.sentHeader = true
		if err := w.st.sendHead(w.status, w.hdr, false, sniff, w.trailers); err != nil {
			return err
		}
	}
	if len(w.buf) > 0 {
		err := w.st.sendData(w.buf, false)
		w.buf = w.buf[:0]
		return err
	}
	return nil
}

func (w *h2Writer) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.st.c.s.idleTimeout > 0 {
		w.st.lastWrite.Store(time.Now().UnixNano())
	}
	return w.flushBuf(nil)
}

func (w *h2Writer) Flush() { w.FlushError() }

// finish ends the response as the handler returned.
func (w *h2Writer) finish() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	st := w.st
	if w.cl >= 0 && w.written < w.cl && bodyAllowed(w.status) && !w.head {
		// The handler wrote less than it declared: the client must not
		// take the body for whole.
		return errH2Short
	}
	tr := w.trailerFields()
	if w.head {
		tr = nil // a HEAD response ends with its head, as x/net's
	}
	if !w.sentHeader {
		w.sentHeader = true
		if w.cl < 0 && len(tr) == 0 && bodyAllowed(w.status) && (w.written > 0 || !w.head) {
			w.hdr["Content-Length"] = []string{strconv.FormatInt(w.written, 10)}
		}
		if len(w.buf) == 0 {
			return st.sendHeadEnd(w.status, w.hdr, len(tr) == 0, tr, w.headSniff, w.trailers)
		}
		err := st.sendHeadData(w.status, w.hdr, w.buf, len(tr) == 0, w.trailers)
		w.buf = w.buf[:0]
		if err != nil || len(tr) == 0 {
			return err
		}
		return st.sendTrailers(tr)
	}
	if len(w.buf) > 0 || len(tr) == 0 {
		err := st.sendData(w.buf, len(tr) == 0)
		w.buf = w.buf[:0]
		if err != nil || len(tr) == 0 {
			return err
		}
	}
	return st.sendTrailers(tr)
}

// h2SniffLen is how much of a body http.DetectContentType reads.
const h2SniffLen = 512

var errH2Short = errors.New("http2: handler wrote less than its Content-Length")

// trailerFields returns the trailers to send: the declared ones the
// handler gave a value, and those set with http.TrailerPrefix.
func (w *h2Writer) trailerFields() http.Header {
	var tr http.Header
	for _, k := range w.trailers {
		if vv := w.hdr[k]; len(vv) > 0 && httpValidTrailer(k) {
			if tr == nil {
				tr = make(http.Header)
			}
			tr[k] = vv
		}
	}
	for k, vv := range w.hdr {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok && httpValidTrailer(name) {
			if tr == nil {
				tr = make(http.Header)
			}
			tr[http.CanonicalHeaderKey(name)] = vv
		}
	}
	return tr
}

func httpValidTrailer(k string) bool {
	switch http.CanonicalHeaderKey(k) {
	case "Transfer-Encoding", "Trailer", "Content-Length", "":
		return false
	}
	return true
}

// release returns the held buffer once the response ended.
func (w *h2Writer) release() {
	if w.bufArr != nil {
		h2Bufs.Put(w.bufArr)
		w.bufArr, w.buf = nil, nil
	}
}

// CloseNotify is x/net's: true once the stream ends early.
func (w *h2Writer) CloseNotify() <-chan bool {
	if w.notify == nil {
		ch := make(chan bool, 1)
		w.notify = ch
		context.AfterFunc(&w.st.ctx, func() { ch <- true })
	}
	return w.notify
}

// Push is not offered (clients turn it off; x/net's answer).
func (w *h2Writer) Push(string, *http.PushOptions) error { return http.ErrNotSupported }

// EnableFullDuplex serves http.ResponseController: HTTP/2 always is.
func (w *h2Writer) EnableFullDuplex() error { return nil }

// SetWriteDeadline serves http.ResponseController: the stream is reset
// when t passes (as x/net's). The zero time restores timeouts.write.
func (w *h2Writer) SetWriteDeadline(t time.Time) error {
	return w.st.setWriteDeadline(t)
}

// SetReadDeadline serves http.ResponseController: a body read waiting
// past t fails with a timeout.
func (w *h2Writer) SetReadDeadline(t time.Time) error {
	st := w.st
	c := st.c
	c.mu.Lock()
	st.readDeadline = t
	st.body.signal()
	c.mu.Unlock()
	return nil
}

func (st *h2Stream) setWriteDeadline(t time.Time) error {
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.err != nil {
		return st.err
	}
	if st.wtimer != nil {
		st.wtimer.Stop()
		st.wtimer = nil
	}
	var d time.Duration
	switch {
	case !t.IsZero():
		d = time.Until(t)
	case c.s.writeTimeout > 0:
		d = c.s.writeTimeout - time.Since(st.start)
	default:
		return nil
	}
	if d <= 0 {
		c.resetLocked(st, http2.ErrCodeInternal, true)
		return nil
	}
	st.wtimer = time.AfterFunc(d, st.writeTimedOut)
	return nil
}
