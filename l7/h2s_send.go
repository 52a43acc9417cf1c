package l7

import (
	"context"
	"errors"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

var errH2StreamClosed = errors.New("http2: stream closed")

// writeFrames runs fn, which writes frames with wfr, under wmu. After a
// write error every later one fails with it (the batchConn closed the
// connection, so the serve loop ends too).
func (c *h2Conn) writeFrames(fn func() error) error {
	c.wmu.Lock()
	err := c.writeLocked(fn)
	c.wmu.Unlock()
	return err
}

func (c *h2Conn) writeLocked(fn func() error) error {
	if c.werr != nil {
		return c.werr
	}
	if err := fn(); err != nil {
		c.werr = err
		return err
	}
	return nil
}

// runHandler serves a stream on its own goroutine, then ends its
// response: what the handler left buffered goes out with END_STREAM.
func (c *h2Conn) runHandler(st *h2Stream) {
	r, h := st.req, st.h
	st.req, st.h = nil, nil
	// Its stack grows here, where the fewest frames are on it to copy.
	growStack()
	ok := false
	defer func() {
		var err error
		if ok {
			err = st.w.finish()
		} else {
			err = errH2StreamClosed
			if p := recover(); p != nil && p != http.ErrAbortHandler {
				c.s.log.Error("panic serving HTTP/2 stream", "remote", c.remote, "panic", p, "stack", string(debug.Stack()))
			}
		}
		c.streamDone(st, err)
	}()
	h.ServeHTTP(&st.w, r)
	ok = true
}

// streamDone takes the stream off the connection as its handler ended:
// reset if the response is not whole (err), or, if the client still
// sends a body nobody will read, with NO_ERROR (RFC 9113 8.1).
func (c *h2Conn) streamDone(st *h2Stream, err error) {
	cancelled := st.ctx.Err() != nil
	c.mu.Lock()
	// A stream cancelled as the whole connection ends (the client went,
	// Close, an error) was not reset by the client: no rapid reset.
	cancelled = cancelled && !c.closed
	st.body.stopTimer()
	if c.streams[st.id] == st {
		switch {
		case err != nil:
			c.resetLocked(st, http2.ErrCodeInternal, true)
		case !st.remoteDone:
			c.resetLocked(st, http2.ErrCodeNo, true)
		default:
			c.endLocked(st, nil)
		}
	}
	c.handlers--
	if len(c.streams) == 0 && c.handlers == 0 {
		c.idleLocked()
		c.closeIfDoneLocked()
	}
	c.flow.Broadcast() // teardown waits for the handlers
	c.mu.Unlock()
	st.ctx.cancel(context.Canceled)
	st.w.release()
	if cancelled {
		c.cancelled()
	}
}

// take waits for send credit on the stream and the connection, and
// returns how many of want bytes may go in one DATA frame. A wait that
// lasts timeouts.idle resets the stream: its client gives no credit
// (nginx's send_timeout).
func (st *h2Stream) take(want int, wait bool) (int, error) {
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	var since time.Time
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		if st.err != nil {
			return 0, errH2StreamClosed
		}
		if c.closed {
			return 0, errH2ConnClosed
		}
		n := int64(min(want, int(c.maxFrame.Load())))
		n = min(n, c.sendWindow, st.sendWindow)
		if n > 0 {
			c.sendWindow -= n
			st.sendWindow -= n
			return int(n), nil
		}
		if !wait {
			return 0, nil
		}
		if stall := c.s.idleTimeout; stall > 0 {
			if since.IsZero() {
				since = time.Now()
				t = time.AfterFunc(stall, func() {
					c.mu.Lock()
					c.flow.Broadcast()
					c.mu.Unlock()
				})
			} else if time.Since(since) >= stall {
				c.resetLocked(st, http2.ErrCodeInternal, true)
				return 0, errH2StreamClosed
			}
		}
		c.flow.Wait()
	}
}

// giveBack returns credit taken for a frame that was not sent.
func (st *h2Stream) giveBack(n int) {
	c := st.c
	c.mu.Lock()
	c.sendWindow += int64(n)
	st.sendWindow += int64(n)
	c.flow.Broadcast()
	c.mu.Unlock()
}

// sendHead sends a response head (a 1xx one, or a final one with no body
// to follow when end). sniff: the body's first bytes, for a Content-Type.
// skip: the declared trailers, not sent in the head.
func (st *h2Stream) sendHead(status int, hdr http.Header, end bool, sniff []byte, skip []string) error {
	c := st.c
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if st.wdone {
		return errH2StreamClosed
	}
	if status >= 200 {
		st.finalSent = true
	}
	return c.writeLocked(func() error {
		c.encodeLocked(status, hdr, sniff, skip)
		if end {
			st.wdone = true
		}
		return c.writeHeadersLocked(st.id, end)
	})
}

// sendHeadEnd sends a final head with no body (sniff: a HEAD's), then tr
// if any.
func (st *h2Stream) sendHeadEnd(status int, hdr http.Header, end bool, tr http.Header, sniff []byte, skip []string) error {
	if err := st.sendHead(status, hdr, end, sniff, skip); err != nil || end {
		return err
	}
	return st.sendTrailers(tr)
}

// sendHeadData sends a final head and a body the handler ended with: one
// HEADERS and one DATA frame under one lock when the windows allow.
func (st *h2Stream) sendHeadData(status int, hdr http.Header, data []byte, end bool, skip []string) error {
	n, err := st.take(len(data), false)
	if err != nil {
		return err
	}
	c := st.c
	if err := st.lockWrite(n); err != nil {
		return err
	}
	last := n == len(data) && end
	st.finalSent = true
	err = c.writeLocked(func() error {
		c.encodeLocked(status, hdr, data, skip)
		if err := c.writeHeadersLocked(st.id, false); err != nil || n == 0 {
			return err
		}
		if last {
			st.wdone = true
		}
		return c.wfr.WriteData(st.id, last, data[:n])
	})
	c.wmu.Unlock()
	if err != nil || last {
		return err
	}
	return st.sendData(data[n:], end)
}

// lockWrite takes wmu for a frame of n bytes of credit on st. If st
// takes no more frames, the credit goes back and wmu is not held.
func (st *h2Stream) lockWrite(n int) error {
	st.c.wmu.Lock()
	if st.wdone {
		st.c.wmu.Unlock()
		st.giveBack(n)
		return errH2StreamClosed
	}
	return nil
}

// sendData sends data in DATA frames as the windows allow; end: the last
// one ends the stream (an empty one if data is).
func (st *h2Stream) sendData(data []byte, end bool) error {
	c := st.c
	for {
		n := 0
		if len(data) > 0 {
			var err error
			if n, err = st.take(len(data), true); err != nil {
				return err
			}
		} else if !end {
			return nil
		}
		if err := st.lockWrite(n); err != nil {
			return err
		}
		last := n == len(data) && end
		if last {
			st.wdone = true
		}
		err := c.writeLocked(func() error { return c.wfr.WriteData(st.id, last, data[:n]) })
		c.wmu.Unlock()
		if err != nil || n == len(data) {
			return err
		}
		data = data[n:]
	}
}

// sendTrailers ends the stream with a HEADERS frame of trailers.
func (st *h2Stream) sendTrailers(tr http.Header) error {
	c := st.c
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if st.wdone {
		return errH2StreamClosed
	}
	st.wdone = true
	return c.writeLocked(func() error {
		c.encodeLocked(0, tr, nil, nil)
		return c.writeHeadersLocked(st.id, true)
	})
}

// writeHeadersLocked writes the block in hbuf as HEADERS and, past the
// peer's frame size, CONTINUATION frames.
func (c *h2Conn) writeHeadersLocked(id uint32, end bool) error {
	block, max := c.hbuf, int(c.maxFrame.Load())
	frag := block[:min(len(block), max)]
	block = block[len(frag):]
	err := c.wfr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: frag, EndStream: end, EndHeaders: len(block) == 0})
	for err == nil && len(block) > 0 {
		frag = block[:min(len(block), max)]
		block = block[len(frag):]
		err = c.wfr.WriteContinuation(id, len(block) == 0, frag)
	}
	return err
}

// encodeLocked encodes a response head (status 0: trailers) into hbuf:
// field names in lower case, connection-specific fields dropped (RFC
// 9113 8.2.2), invalid names and values skipped, as x/net's server does;
// a Content-Type sniffed from sniff if the handler set none; the fields
// in skip (declared trailers) left out.
func (c *h2Conn) encodeLocked(status int, hdr http.Header, sniff []byte, skip []string) {
	c.hbuf = c.hbuf[:0]
	if status != 0 {
		c.henc.WriteField(hpack.HeaderField{Name: ":status", Value: h2StatusText(status)})
	}
	for k, vv := range hdr {
		if status != 0 && (strings.HasPrefix(k, http.TrailerPrefix) || len(skip) > 0 && slices.Contains(skip, k)) {
			continue
		}
		lk, ok := h2LowerKey(k)
		if !ok {
			continue
		}
		switch lk {
		case "connection", "proxy-connection", "transfer-encoding", "upgrade", "keep-alive":
			continue
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) || lk == "te" && v != "trailers" {
				continue
			}
			c.henc.WriteField(hpack.HeaderField{Name: lk, Value: v})
		}
	}
	if len(sniff) > 0 && status >= 200 && bodyAllowed(status) {
		if _, ok := hdr["Content-Type"]; !ok && len(hdr["Content-Encoding"]) == 0 {
			c.henc.WriteField(hpack.HeaderField{Name: "content-type", Value: http.DetectContentType(sniff)})
		}
	}
}

// h2LowerKey is a field name as HTTP/2 writes it, or false if it is not
// a valid one.
func h2LowerKey(k string) (string, bool) {
	if v, ok := h2LowerKeys[k]; ok {
		return v, true
	}
	if !httpguts.ValidHeaderFieldName(k) {
		return "", false
	}
	return strings.ToLower(k), true
}

// h2LowerKeys holds commonKeys in lower case: no allocation for them.
var h2LowerKeys = func() map[string]string {
	m := make(map[string]string, len(commonKeys))
	for k := range commonKeys {
		m[k] = strings.ToLower(k)
	}
	return m
}()

// h2StatusText is the :status value, without an allocation for the
// codes in use.
func h2StatusText(code int) string {
	if code >= 100 && code < 600 {
		return h2Statuses[code-100]
	}
	return strconv.Itoa(code)
}

var h2Statuses = func() (s [500]string) {
	for i := range s {
		s[i] = strconv.Itoa(i + 100)
	}
	return s
}()
