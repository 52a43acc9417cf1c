package server

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/proxynow/proxynow/l4"
	"github.com/proxynow/proxynow/l7"
)

// Parked connections (l7/park.go): an idle plaintext HTTP/1.1 connection
// the HTTP server handed back waits here for its next request. On Linux
// one goroutine per listener waits for all of them in an epoll instance of
// its own (park_linux.go): a parked connection costs a small record, no
// goroutine and no timer. Elsewhere, or when epoll cannot be had, each
// waits in a goroutine of its own blocked in a 1-byte read (goWaiter); if
// epoll fails later, the connections it holds move there.

// parkEpoll turns the epoll waiter off for the tests of the fallback.
var parkEpoll = true

// parkable is a plaintext connection as handoff gives it to the HTTP
// server: l7's guard parks it through Park instead of closing it. The same
// record carries it while it is parked and back to the HTTP server.
type parkable struct {
	*l4.Conn
	ctx     context.Context // the l4 server's
	h       handoff
	resumed bool
	first   [1]byte // goWaiter: the byte that woke the connection

	// The epoll waiter's bookkeeping (park_linux.go), under its lock.
	dl   int64  // idle deadline in ns since the waiter's base; maxDeadline: none
	idx  int32  // in the waiter's deadline heap
	slot int32  // the waiter's slot, named in the epoll registration
	seq  uint32 // the registration's number, told apart from a slot's earlier ones
}

var _ l7.IdleParker = (*parkable)(nil)

// Park is called by the guard once, on the goroutine the HTTP server is
// ending the connection on.
func (p *parkable) Park(deadline time.Time) { p.h.l.parked.park(p, deadline) }

func (p *parkable) Resumed() bool { return p.resumed }

// resume hands a parked connection whose next request has begun to the
// HTTP server in place now.
func (p *parkable) resume() {
	p.resumed = true
	p.h.hand(p.ctx, p.Conn, p)
}

// parkWaiter holds parked connections until their next request.
type parkWaiter interface {
	// park holds p until a request begins on it (then resumes it), until
	// the idle deadline dl (zero: none) or closeAll (then closes it). It
	// reports false when it cannot hold p, which is still the caller's.
	park(p *parkable, dl time.Time) bool
	// closeAll closes the connections held and every one parked later,
	// and returns once the waiter has stopped.
	closeAll()
	// len is how many connections are held.
	len() int
}

// parkedConns are a listener's parked connections, closed at once when the
// listener shuts down (as net/http closes its idle ones).
type parkedConns struct {
	log *slog.Logger // set by newListener; nil: none

	mu     sync.Mutex
	ep     parkWaiter // the epoll waiter, made at the first park; nil without one
	tried  bool       // ep was made, or could not be
	closed bool
	gw     goWaiter // the fallback
}

// park holds p until its next request, its idle deadline or closeAll.
func (s *parkedConns) park(p *parkable, dl time.Time) {
	// The guard's park deadline (past) is still on the socket: the HTTP
	// server's next Read must not fail on it, nor goWaiter's.
	if p.TCPConn.SetReadDeadline(time.Time{}) != nil {
		p.Conn.Close()
		return
	}
	if len(p.Prefix) > 0 {
		// Bytes read ahead (by tlsmux's peek) and not consumed yet: a
		// request has begun, which the socket will not report again.
		go p.resume()
		return
	}
	if ep := s.epoll(); ep != nil && ep.park(p, dl) {
		return
	}
	s.gw.park(p, dl)
}

// epoll returns the epoll waiter, made on first use; nil when there is none.
func (s *parkedConns) epoll() parkWaiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.tried && !s.closed && parkEpoll {
		s.tried = true
		if s.log == nil {
			s.log = slog.New(slog.DiscardHandler)
		}
		ep, err := newEpollWaiter(s.log, &s.gw)
		if err != nil {
			s.log.Warn("idle HTTP/1 connections wait in a goroutine each", "error", err)
		} else {
			s.ep = ep
		}
	}
	return s.ep
}

// closeAll closes the parked connections and every one parked later.
func (s *parkedConns) closeAll() {
	s.mu.Lock()
	s.closed = true
	ep := s.ep
	s.mu.Unlock()
	if ep != nil {
		ep.closeAll()
	}
	s.gw.closeAll()
}

// len is how many connections are parked.
func (s *parkedConns) len() int {
	s.mu.Lock()
	ep := s.ep
	s.mu.Unlock()
	n := s.gw.len()
	if ep != nil {
		n += ep.len()
	}
	return n
}

// goWaiter waits for each parked connection's next request in a goroutine
// of its own.
type goWaiter struct {
	mu     sync.Mutex
	conns  map[*l4.Conn]struct{}
	closed bool
}

var _ parkWaiter = (*goWaiter)(nil)

func (w *goWaiter) park(p *parkable, dl time.Time) bool {
	go w.await(p, dl)
	return true
}

// await waits for the first byte of p's next request until dl, then
// hands p to the HTTP server again; it closes p instead on idle timeout,
// when the client goes, or when the listener shuts down.
func (w *goWaiter) await(p *parkable, dl time.Time) {
	c := p.Conn
	if !w.add(c) {
		c.Close()
		return
	}
	ok := c.TCPConn.SetReadDeadline(dl) == nil
	if ok {
		n, _ := c.TCPConn.Read(p.first[:])
		ok = n == 1 && c.TCPConn.SetReadDeadline(time.Time{}) == nil
	}
	w.remove(c)
	if !ok {
		c.Close()
		return
	}
	c.Prefix = p.first[:1]
	p.resume()
}

// add registers c; false once closeAll has run.
func (w *goWaiter) add(c *l4.Conn) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	if w.conns == nil {
		w.conns = make(map[*l4.Conn]struct{})
	}
	w.conns[c] = struct{}{}
	return true
}

func (w *goWaiter) remove(c *l4.Conn) {
	w.mu.Lock()
	delete(w.conns, c)
	w.mu.Unlock()
}

// closeAll closes the connections: their goroutines' reads fail and
// they end. It does not wait for them (nor did net/http for its idle ones).
func (w *goWaiter) closeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	for c := range w.conns {
		c.Close()
	}
}

func (w *goWaiter) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.conns)
}
