package l7

import (
	"context"
	"net"
	"sync"
)

// ConnQueue is a net.Listener whose connections come from Push rather than
// from a socket: the server package pushes what l4 (and tlsmux) accepted
// into an entrypoint's HTTP server.
type ConnQueue struct {
	// Address is what Addr reports (unset: the zero TCP address). Set it
	// before the queue is served.
	Address net.Addr

	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

// NewConnQueue returns an open queue.
func NewConnQueue() *ConnQueue {
	return &ConnQueue{conns: make(chan net.Conn), done: make(chan struct{})}
}

// Push waits until Accept takes c. It returns net.ErrClosed once the queue
// is closed, or ctx's error, and then c is still the caller's.
func (q *ConnQueue) Push(ctx context.Context, c net.Conn) error {
	select {
	case q.conns <- c:
		return nil
	case <-q.done:
		return net.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (q *ConnQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.conns:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *ConnQueue) Close() error {
	q.once.Do(func() { close(q.done) })
	return nil
}

func (q *ConnQueue) Addr() net.Addr {
	if q.Address == nil {
		return &net.TCPAddr{}
	}
	return q.Address
}
