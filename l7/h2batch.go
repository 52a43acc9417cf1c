package l7

import (
	"crypto/tls"
	"net"
	"runtime"
	"sync"
	"time"
)

// batchConn is the connection an HTTP/2 server conn writes to: a Write is
// copied and returns at once, and a drain goroutine writes what gathered
// to the connection in one Write (one TLS record, one syscall) once the
// goroutines that were ready to run have run. Those are, under load, the
// handlers of the other streams finishing their responses: their frames
// join the same write instead of each costing a TLS record and a write
// syscall of its own (the HTTP/2 server writes each frame as it is
// ready). With one stream at a time nothing waits longer than the
// scheduler's round.
//
// Back-pressure is kept: a Write waits while batchLimit bytes are pending
// (the peer does not read), as it waited in the connection's Write. A
// write error is returned by the next Write, and closes the connection
// so that its reader stops too. The server conn writes from one goroutine
// at a time; Close may come from another.
type batchConn struct {
	net.Conn

	mu       sync.Mutex
	cond     sync.Cond // on mu: draining ended, or pending shrank
	pending  *[]byte   // bytes accepted, not written yet; nil when idle
	draining bool      // a drain goroutine (or a direct Write) is writing
	err      error     // the first write error, or net.ErrClosed after Close
	closing  bool      // Close put its own deadline on the socket
	// stall ends a write that makes no progress for timeouts.idle.
	stall stallDeadline
	// closeFlush is batchCloseFlush (tests shorten it).
	closeFlush time.Duration
}

const (
	// batchLimit is how many pending bytes make a Write wait: a few
	// full-size DATA frames.
	batchLimit = 64 << 10
	// batchDirect is the size from which a Write with nothing pending goes
	// to the connection at once, uncopied: a large DATA frame is its own
	// TLS record anyway.
	batchDirect = 16 << 10
	// batchCloseFlush bounds the wait for pending bytes (a GOAWAY) when
	// the connection closes: tls.Conn gives its close_notify as long.
	batchCloseFlush = 5 * time.Second
	// batchBufCap is a pooled buffer's capacity; one that grew past
	// batchBufMax is not kept.
	batchBufCap = 16 << 10
	batchBufMax = 2 * batchLimit
)

var batchBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, batchBufCap)
	return &b
}}

// newBatchConn wraps c; over a *tls.Conn the result reports its
// ConnectionState, so that requests carry it.
//
// A write that makes no progress for stall (timeouts.idle; 0: none) fails
// and closes the connection: a client that stops reading cannot hold it
// and its streams for ever (the server conn cannot see that through
// this conn, whose writes return at once).
func newBatchConn(c net.Conn, stall time.Duration) net.Conn {
	b := &batchConn{Conn: c, closeFlush: batchCloseFlush, stall: stallDeadline{stall: int64(stall)}}
	b.cond.L = &b.mu
	if tc, ok := c.(*tls.Conn); ok {
		return &batchTLSConn{batchConn: b, tc: tc}
	}
	return b
}

// batchTLSConn is a batchConn over a *tls.Conn.
type batchTLSConn struct {
	*batchConn
	tc *tls.Conn
}

func (c *batchTLSConn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	for c.err == nil && c.pending != nil && len(*c.pending) >= batchLimit {
		c.cond.Wait()
	}
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return 0, err
	}
	if !c.draining && len(p) >= batchDirect {
		c.draining = true
		c.armLocked()
		c.mu.Unlock()
		n, err := c.Conn.Write(p)
		c.mu.Lock()
		c.draining = false
		if err != nil {
			c.failLocked(err)
		}
		c.startDrainLocked() // what a concurrent Write added meanwhile
		c.cond.Broadcast()
		c.mu.Unlock()
		return n, err
	}
	if c.pending == nil {
		c.pending = batchBufs.Get().(*[]byte)
	}
	*c.pending = append(*c.pending, p...)
	c.startDrainLocked()
	c.mu.Unlock()
	return len(p), nil
}

// startDrainLocked starts a drain goroutine for pending bytes, unless one
// is writing.
func (c *batchConn) startDrainLocked() {
	if c.draining || c.pending == nil || c.err != nil {
		return
	}
	c.draining = true
	go c.drain()
}

// drain writes the pending bytes until none are left.
func (c *batchConn) drain() {
	// Behind every goroutine ready to run: those adding to the batch.
	runtime.Gosched()
	c.mu.Lock()
	for c.pending != nil && c.err == nil {
		buf := c.pending
		c.pending = nil
		c.armLocked()
		c.mu.Unlock()
		_, err := c.Conn.Write(*buf)
		c.mu.Lock()
		putBatchBuf(buf)
		if err != nil {
			c.failLocked(err)
		}
		c.cond.Broadcast() // writers waiting for room
	}
	c.draining = false
	c.cond.Broadcast()
	c.mu.Unlock()
}

// armLocked moves the stall deadline on (lazily: stallDeadline) before
// the draining goroutine writes, unless Close set its own. Under mu, so
// that Close's deadline comes after it.
func (c *batchConn) armLocked() {
	if c.stall.stall <= 0 || c.closing {
		return
	}
	c.stall.arm(0, c.Conn.SetWriteDeadline)
}

func putBatchBuf(b *[]byte) {
	if cap(*b) > batchBufMax {
		return
	}
	*b = (*b)[:0]
	batchBufs.Put(b)
}

// failLocked records a write error, drops what is pending and closes the
// connection, so that the server conn's reader ends too (the error
// itself arrives one Write late).
// Under TLS the socket is closed without a close_notify alert: after a
// failed write it could only wait (up to 5 s, holding mu) for a peer that
// does not read.
func (c *batchConn) failLocked(err error) {
	if c.err == nil {
		c.err = err
		if tc, ok := c.Conn.(*tls.Conn); ok {
			tc.NetConn().Close()
		} else {
			c.Conn.Close()
		}
	}
	if c.pending != nil {
		putBatchBuf(c.pending)
		c.pending = nil
	}
}

// Close writes what is pending (within batchCloseFlush, or the stall
// timeout if shorter: the peer may not read) and closes the connection.
func (c *batchConn) Close() error {
	c.mu.Lock()
	if c.draining {
		c.closing = true
		// A client that floods PINGs without reading their ACKs may be
		// closed while the drain waits; giving it batchCloseFlush then
		// would hold the connection longer than timeouts.idle promises.
		flush := c.closeFlush
		if s := time.Duration(c.stall.stall); s > 0 && s < flush {
			flush = s
		}
		c.Conn.SetWriteDeadline(time.Now().Add(flush))
		for c.draining {
			c.cond.Wait()
		}
	}
	closed := c.err != nil
	if !closed {
		c.err = net.ErrClosed
	}
	c.cond.Broadcast()
	c.mu.Unlock()
	if closed {
		return nil // failLocked closed it
	}
	return c.Conn.Close()
}
