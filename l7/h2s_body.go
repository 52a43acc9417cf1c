package l7

import (
	"errors"
	"io"
	"os"
	"sync"
	"time"
)

// h2Body is a stream's request body: what the client sent ahead of the
// handler, within the stream's window. Fields under the conn's mu.
type h2Body struct {
	st     *h2Stream
	cond   sync.Cond // on the conn's mu: bytes came, or the body ended
	buf    []byte
	off    int
	eof    bool // END_STREAM came
	closed bool // the handler closed it
	expect bool // a 100 Continue is owed before the first wait; the handler's
	timer  *time.Timer
}

var errH2BodyClosed = errors.New("http2: invalid Read on closed Body")

func (b *h2Body) signal() {
	if b.cond.L != nil {
		b.cond.Broadcast()
	}
}

// Read waits for the client's DATA. A wait that lasts timeouts.idle
// while no response write began either (nothing moved on the stream, as
// timeouts.idle means it), or that passes the handler's read deadline,
// fails with a timeout, which the proxy answers 408 (nginx's
// client_body_timeout). A bidirectional stream whose client only listens
// (a gRPC subscription) stays.
func (b *h2Body) Read(p []byte) (int, error) {
	st := b.st
	c := st.c
	c.mu.Lock()
	if b.cond.L == nil {
		b.cond.L = &c.mu
	}
	var start int64
	for len(b.buf) == b.off && !b.eof && st.err == nil && !b.closed {
		if b.expect {
			b.expect = false
			c.mu.Unlock()
			st.w.continue100()
			c.mu.Lock()
			continue
		}
		if start == 0 {
			start = time.Now().UnixNano()
		}
		if err := b.waitLocked(start); err != nil {
			c.mu.Unlock()
			return 0, err
		}
	}
	b.expect = false
	switch {
	case b.closed:
		c.mu.Unlock()
		return 0, errH2BodyClosed
	case len(b.buf) > b.off:
		n := copy(p, b.buf[b.off:])
		b.off += n
		drained := b.off == len(b.buf)
		if drained {
			b.buf, b.off = b.buf[:0], 0
		}
		conn := c.creditLocked(st, int64(n), drained)
		strm := st.recvUnsentTake(drained)
		c.mu.Unlock()
		c.sendCredit(st.id, conn, strm)
		return n, nil
	case b.eof && st.err == nil:
		c.mu.Unlock()
		return 0, io.EOF
	}
	err := st.err
	c.mu.Unlock()
	if errors.Is(err, errH2ConnClosed) {
		return 0, io.ErrUnexpectedEOF
	}
	return 0, err
}

// waitLocked waits once for the body to move, or returns the timeout
// that ended the wait.
func (b *h2Body) waitLocked(start int64) error {
	st := b.st
	now := time.Now()
	var wake time.Time
	if dl := st.readDeadline; !dl.IsZero() {
		if !now.Before(dl) {
			return os.ErrDeadlineExceeded
		}
		wake = dl
	}
	if stall := int64(st.c.s.idleTimeout); stall > 0 {
		from := max(start, st.lastWrite.Load())
		if now.UnixNano()-from >= stall {
			return os.ErrDeadlineExceeded
		}
		if at := time.Unix(0, from+stall); wake.IsZero() || at.Before(wake) {
			wake = at
		}
	}
	if !wake.IsZero() {
		d := wake.Sub(now)
		if b.timer == nil {
			c := st.c
			b.timer = time.AfterFunc(d, func() {
				c.mu.Lock()
				b.cond.Broadcast()
				c.mu.Unlock()
			})
		} else {
			b.timer.Reset(d)
		}
	}
	b.cond.Wait()
	return nil
}

// Close drops what the client still sends: the connection's credit for
// it goes back at once.
func (b *h2Body) Close() error {
	st := b.st
	c := st.c
	c.mu.Lock()
	if b.closed {
		c.mu.Unlock()
		return nil
	}
	b.closed = true
	conn := c.creditLocked(nil, int64(len(b.buf)-b.off), true)
	b.buf, b.off = nil, 0
	b.signal()
	c.mu.Unlock()
	c.sendCredit(0, conn, 0)
	return nil
}

// stopTimer ends the body's wake-up timer as the handler returns.
func (b *h2Body) stopTimer() {
	if b.timer != nil {
		b.timer.Stop()
	}
}
