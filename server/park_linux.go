package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// epollWaiter holds a listener's parked connections in an epoll instance
// of its own, watched by one goroutine (run) that sleeps in epoll_wait
// until a connection is readable or the nearest idle deadline, kept in a
// min-heap. It runs while connections are parked and ends when none are.
//
// Each socket is registered level-triggered and one-shot: a request that
// arrived before the registration is reported at once (Go's own poller is
// edge-triggered, and the edge of such a request may be gone already), and
// a registration reports once, so one event means one hand-off. The
// socket stays in Go's poller too; nothing here reads from it.
//
// No file descriptor is touched by number outside RawConn.Control: Control
// holds the descriptor open, so an epoll_ctl in it cannot reach another
// socket that got the number of one closed meanwhile. A connection closed
// by someone else while parked (l4 at the end of its shutdown) leaves the
// epoll set with its file, and its record here is dropped at its deadline
// or at closeAll; the record keeps the conn referenced until then.
type epollWaiter struct {
	epfd   int
	wakefd int // an eventfd in epfd, written to wake run early
	base   time.Time

	mu      sync.Mutex
	heap    []*parkable // by deadline
	slots   []*parkable // by slot, the registrations' data
	free    []int32     // unused slots
	seq     uint32
	ev      unix.EpollEvent // park's argument to epoll_ctl, kept off the heap
	running bool            // run is running; it ends when nothing is parked
	wakeAt  int64           // run's epoll_wait ends by then without a wake
	closed  bool
	failed  error         // epoll_wait failed: parks go elsewhere
	stopped chan struct{} // closed once closeAll has finished
	wg      sync.WaitGroup
}

var _ parkWaiter = (*epollWaiter)(nil)

const (
	maxDeadline = math.MaxInt64
	// wakeSlot names the eventfd's registration.
	wakeSlot = -1
	// epollBatch is how many events one epoll_wait returns at most.
	epollBatch = 128
	// parkEvents: readable, or the peer closed; one-shot. Level-triggered
	// (no EPOLLET) on purpose, see epollWaiter.
	parkEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT
)

func newEpollWaiter() (parkWaiter, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeSlot}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(wakefd)
		unix.Close(epfd)
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	return &epollWaiter{epfd: epfd, wakefd: wakefd, base: time.Now(), stopped: make(chan struct{})}, nil
}

// park registers p. It is false only when epoll refuses p (no room: see
// fs.epoll.max_user_watches) or has failed.
func (w *epollWaiter) park(p *parkable, dl time.Time) bool {
	raw, err := p.TCPConn.SyscallConn()
	if err != nil {
		p.Conn.Close()
		return true
	}
	w.mu.Lock()
	if w.failed != nil {
		w.mu.Unlock()
		return false
	}
	if w.closed {
		w.mu.Unlock()
		p.Conn.Close()
		return true
	}
	p.dl = maxDeadline
	if !dl.IsZero() {
		p.dl = int64(dl.Sub(w.base))
	}
	w.take(p)
	// Registered under the lock: run, which needs it to look p up, cannot
	// miss an event that comes at once.
	w.ev = unix.EpollEvent{Events: parkEvents, Fd: p.slot, Pad: int32(p.seq)}
	var ctlErr error
	err = raw.Control(func(fd uintptr) { ctlErr = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, int(fd), &w.ev) })
	if err != nil || ctlErr != nil {
		w.drop(p)
		w.mu.Unlock()
		if err != nil { // closed already
			p.Conn.Close()
			return true
		}
		return false
	}
	switch {
	case !w.running:
		w.running = true
		w.wakeAt = math.MinInt64 // run has not chosen its sleep yet
		w.wg.Add(1)
		go w.run()
	case p.dl < w.wakeAt:
		w.wakeAt = p.dl
		w.wake()
	}
	w.mu.Unlock()
	return true
}

// take gives p a slot and a place in the heap; under w.mu.
func (w *epollWaiter) take(p *parkable) {
	if n := len(w.free); n > 0 {
		p.slot = w.free[n-1]
		w.free = w.free[:n-1]
		w.slots[p.slot] = p
	} else {
		p.slot = int32(len(w.slots))
		w.slots = append(w.slots, p)
	}
	w.seq++
	p.seq = w.seq
	p.idx = int32(len(w.heap))
	w.heap = append(w.heap, p)
	w.up(int(p.idx))
}

// drop takes p out of the slots and the heap; under w.mu.
func (w *epollWaiter) drop(p *parkable) {
	w.slots[p.slot] = nil
	w.free = append(w.free, p.slot)
	i, last := int(p.idx), len(w.heap)-1
	if i != last {
		w.swap(i, last)
	}
	w.heap[last] = nil
	w.heap = w.heap[:last]
	if i != last {
		w.down(i)
		w.up(i)
	}
	p.idx = -1
}

func (w *epollWaiter) swap(i, j int) {
	w.heap[i], w.heap[j] = w.heap[j], w.heap[i]
	w.heap[i].idx, w.heap[j].idx = int32(i), int32(j)
}

func (w *epollWaiter) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if w.heap[parent].dl <= w.heap[i].dl {
			return
		}
		w.swap(i, parent)
		i = parent
	}
}

func (w *epollWaiter) down(i int) {
	n := len(w.heap)
	for {
		least := i
		if l := 2*i + 1; l < n && w.heap[l].dl < w.heap[least].dl {
			least = l
		}
		if r := 2*i + 2; r < n && w.heap[r].dl < w.heap[least].dl {
			least = r
		}
		if least == i {
			return
		}
		w.swap(i, least)
		i = least
	}
}

// wake ends run's epoll_wait early; under w.mu.
func (w *epollWaiter) wake() {
	var b [8]byte
	binary.NativeEndian.PutUint64(b[:], 1)
	// EAGAIN: the counter is full, so run wakes anyway.
	_, _ = unix.Write(w.wakefd, b[:])
}

// readyConn is a parked connection epoll reported.
type readyConn struct {
	p      *parkable
	events uint32
}

// run waits for the parked connections while there are any: it resumes
// those whose next request begins and closes those whose idle deadline
// passes.
func (w *epollWaiter) run() {
	defer w.wg.Done()
	events := make([]unix.EpollEvent, epollBatch)
	var ready []readyConn
	var expired []*parkable
	for {
		w.mu.Lock()
		if w.closed || len(w.heap) == 0 {
			w.running = false
			if len(w.heap) == 0 {
				// Let the tables of a crowd that has gone be collected.
				w.heap, w.slots, w.free = nil, nil, nil
			}
			w.mu.Unlock()
			return
		}
		timeout := w.timeout()
		w.mu.Unlock()

		n, err := unix.EpollWait(w.epfd, events, timeout)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			w.fail(fmt.Errorf("epoll_wait: %w", err))
			return
		}
		w.mu.Lock()
		for _, ev := range events[:n] {
			if ev.Fd == wakeSlot {
				var b [8]byte
				_, _ = unix.Read(w.wakefd, b[:])
				continue
			}
			// A registration of a connection closeAll or park took out
			// meanwhile may still report: its slot is empty or another's.
			if ev.Fd < 0 || int(ev.Fd) >= len(w.slots) {
				continue
			}
			if p := w.slots[ev.Fd]; p != nil && p.seq == uint32(ev.Pad) {
				w.drop(p)
				ready = append(ready, readyConn{p, ev.Events})
			}
		}
		now := int64(time.Since(w.base))
		for len(w.heap) > 0 && w.heap[0].dl <= now {
			p := w.heap[0]
			w.drop(p)
			expired = append(expired, p)
		}
		w.mu.Unlock()

		for i, r := range ready {
			if w.unregister(r.p, r.events) {
				go r.p.resume()
			} else {
				r.p.Conn.Close()
			}
			ready[i] = readyConn{}
		}
		ready = ready[:0]
		for i, p := range expired {
			w.unregister(p, 0)
			p.Conn.Close()
			expired[i] = nil
		}
		expired = expired[:0]
	}
}

// timeout is epoll_wait's timeout in ms for the nearest deadline, at
// least the time left (a wake before it would find nothing to close);
// under w.mu.
func (w *epollWaiter) timeout() int {
	dl := w.heap[0].dl
	w.wakeAt = dl
	if dl == maxDeadline {
		return -1
	}
	left := dl - int64(time.Since(w.base))
	if left <= 0 {
		return 0
	}
	ms := (left + int64(time.Millisecond) - 1) / int64(time.Millisecond)
	return int(min(ms, math.MaxInt32))
}

// unregister takes p's socket out of the epoll set. For a connection epoll
// reported (events), it says whether a request may have begun: false when
// the peer closed it with nothing sent, or it failed, which the HTTP
// server need not be bothered with.
func (w *epollWaiter) unregister(p *parkable, events uint32) bool {
	raw, err := p.TCPConn.SyscallConn()
	if err != nil {
		return false
	}
	live := true
	err = raw.Control(func(fd uintptr) {
		_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
		if events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			live = peekLive(fd)
		}
	})
	return err == nil && live
}

// peekLive reports whether a socket whose peer shut down or that failed
// still has bytes to read: a request sent before the FIN. One MSG_PEEK
// recv, which leaves the byte and Go's readiness alone.
func peekLive(fd uintptr) bool {
	var b [1]byte
	n, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		// EAGAIN: nothing yet, and no FIN either (a spurious report); the
		// HTTP server waits for it as for any request.
		return errno == syscall.EAGAIN
	}
	return n > 0
}

// fail gives up on epoll after an epoll_wait error, which no parked
// connection can be trusted to outlive: they are closed, as at an idle
// timeout, and later parks go to the fallback.
func (w *epollWaiter) fail(err error) {
	w.mu.Lock()
	w.failed = err
	w.running = false
	held := w.heap
	w.heap, w.slots, w.free = nil, nil, nil
	w.mu.Unlock()
	for _, p := range held {
		w.unregister(p, 0)
		p.Conn.Close()
	}
}

// closeAll closes every parked connection and refuses later parks; it
// returns once run has ended and the descriptors are closed.
func (w *epollWaiter) closeAll() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.stopped
		return
	}
	w.closed = true
	held := w.heap
	w.heap, w.slots, w.free = nil, nil, nil
	w.wake()
	w.mu.Unlock()
	for _, p := range held {
		w.unregister(p, 0)
		p.Conn.Close()
	}
	w.wg.Wait()
	unix.Close(w.wakefd)
	unix.Close(w.epfd)
	close(w.stopped)
}

func (w *epollWaiter) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.heap)
}
