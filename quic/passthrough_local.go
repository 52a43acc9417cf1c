package quic

import (
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// localPacket is one datagram queued for the local server.
type localPacket struct {
	buf  *[]byte
	n    int
	from *net.UDPAddr
}

// localBufSize fits every QUIC datagram quic-go reads (its buffers are
// 1452 bytes); larger ones get a buffer of their own.
const localBufSize = 2048

var localBufs = sync.Pool{New: func() any { b := make([]byte, localBufSize); return &b }}

// localConn is the net.PacketConn the local server reads: Demux queues the
// datagrams no route claims, and writes go straight to the real socket.
type localConn struct {
	d       *Demux
	enabled atomic.Bool // Local was called: queue datagrams, don't drop them
	q       chan localPacket
	done    chan struct{}
	once    sync.Once

	mu       sync.Mutex
	deadline time.Time
	wake     chan struct{} // closed and replaced when the deadline changes
}

var _ net.PacketConn = (*localConn)(nil)

func newLocalConn(d *Demux, queue int) *localConn {
	return &localConn{d: d, q: make(chan localPacket, queue), done: make(chan struct{}), wake: make(chan struct{})}
}

// deliver queues a copy of b; false if the queue is full or closed.
func (c *localConn) deliver(b []byte, from *net.UDPAddr) bool {
	select {
	case <-c.done:
		return false
	default:
	}
	var bp *[]byte
	if len(b) <= localBufSize {
		bp = localBufs.Get().(*[]byte)
	} else {
		nb := make([]byte, len(b))
		bp = &nb
	}
	n := copy(*bp, b)
	select {
	case c.q <- localPacket{buf: bp, n: n, from: from}:
		return true
	default:
		putLocalBuf(bp)
		return false
	}
}

func putLocalBuf(bp *[]byte) {
	if cap(*bp) == localBufSize {
		localBufs.Put(bp)
	}
}

// ReadFrom returns the next datagram for the local server. Like a UDP
// socket it truncates a datagram longer than p.
func (c *localConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		select { // the common case: a datagram is waiting
		case pk := <-c.q:
			return c.take(p, pk)
		default:
		}
		c.mu.Lock()
		deadline, wake := c.deadline, c.wake
		c.mu.Unlock()
		var timer *time.Timer
		var timeout <-chan time.Time
		if !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				return 0, nil, os.ErrDeadlineExceeded
			}
			timer = time.NewTimer(d)
			timeout = timer.C
		}
		n, from, err, again := c.wait(p, wake, timeout)
		if timer != nil {
			timer.Stop()
		}
		if !again {
			return n, from, err
		}
	}
}

// wait blocks for a datagram, Close, a deadline change (again) or the
// deadline.
func (c *localConn) wait(p []byte, wake <-chan struct{}, timeout <-chan time.Time) (int, net.Addr, error, bool) {
	select {
	case pk := <-c.q:
		n, from, err := c.take(p, pk)
		return n, from, err, false
	case <-c.done:
		return 0, nil, net.ErrClosed, false
	case <-wake:
		return 0, nil, nil, true
	case <-timeout:
		return 0, nil, os.ErrDeadlineExceeded, false
	}
}

func (c *localConn) take(p []byte, pk localPacket) (int, net.Addr, error) {
	n := copy(p, (*pk.buf)[:pk.n])
	putLocalBuf(pk.buf)
	return n, pk.from, nil
}

// WriteTo sends on the entrypoint's socket.
func (c *localConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	select {
	case <-c.done:
		return 0, net.ErrClosed
	default:
	}
	if ua, ok := addr.(*net.UDPAddr); ok {
		return c.d.conn.WriteToUDP(p, ua)
	}
	return c.d.conn.WriteTo(p, addr)
}

// Close stops reads and writes through this connection and drops what is
// queued; the socket stays open (the Demux owns it).
func (c *localConn) Close() error {
	c.once.Do(func() {
		close(c.done)
		for {
			select {
			case pk := <-c.q:
				putLocalBuf(pk.buf)
			default:
				return
			}
		}
	})
	return nil
}

func (c *localConn) LocalAddr() net.Addr { return c.d.conn.LocalAddr() }

func (c *localConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline wakes a blocked ReadFrom (quic.Transport.Close relies on
// it to stop its read loop).
func (c *localConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	close(c.wake)
	c.wake = make(chan struct{})
	c.mu.Unlock()
	return nil
}

// SetWriteDeadline applies to the shared socket's writes: none is set.
func (c *localConn) SetWriteDeadline(time.Time) error { return nil }

// SetReadBuffer and SetWriteBuffer size the real socket: quic-go asks for
// its preferred sizes through them.
func (c *localConn) SetReadBuffer(n int) error  { return c.d.conn.SetReadBuffer(n) }
func (c *localConn) SetWriteBuffer(n int) error { return c.d.conn.SetWriteBuffer(n) }
