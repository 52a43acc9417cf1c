package server

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// epollWaiter holds a listener's parked connections in an epoll instance
// of its own, watched by one goroutine (run) while connections are parked:
// it resumes those that become readable and closes those whose idle
// deadline (kept in a min-heap) passes.
//
// Each socket is registered level-triggered and one-shot: a request that
// arrived before the registration is reported at once (Go's own poller is
// edge-triggered, and the edge of such a request may be gone already), and
// a registration reports once, so one event means one hand-off. The
// socket stays in Go's poller too; nothing here reads from it.
//
// run does not block in epoll_wait: a goroutine in a blocking syscall keeps
// its P until sysmon takes it back, which takes up to 20ms when the
// process has been busy (sysmon then sleeps 10ms between looks), and with
// GOMAXPROCS=1 nothing else runs meanwhile. The epoll descriptor is
// pollable itself (readable while it has events), so it sits in Go's
// poller like a socket: run polls it with a zero timeout and otherwise
// waits in the runtime, with the nearest idle deadline as its read
// deadline. The level-triggered registrations make that edge-triggered
// wait safe: RawConn.Read forgets an earlier edge before it polls, an
// event queued before that poll is found by it, and one queued after it
// raises a new edge.
//
// No file descriptor is touched by number outside RawConn.Control: Control
// holds the descriptor open, so an epoll_ctl in it cannot reach another
// socket that got the number of one closed meanwhile. A connection closed
// by someone else while parked (l4 at the end of its shutdown) leaves the
// epoll set with its file, and its record here is dropped at its deadline
// or at closeAll; the record keeps the conn referenced until then.
//
// The epoll descriptor lives while connections are parked: run closes it
// when the last one leaves, and the next park opens another, so a process
// whose connections are all busy holds no descriptor more than a fresh one.
type epollWaiter struct {
	log      *slog.Logger
	base     time.Time
	fallback parkWaiter // takes the parked connections if epoll fails

	mu      sync.Mutex
	ep      *os.File        // the epoll descriptor, in Go's poller; nil when none is open
	epfd    int             // ep's number
	raw     syscall.RawConn // ep's
	warned  bool            // an open failed and was logged
	heap    []*parkable     // by deadline
	slots   []*parkable     // by slot, the registrations' data
	free    []int32         // unused slots
	seq     uint32
	ev      unix.EpollEvent // park's argument to epoll_ctl, kept off the heap
	running bool            // run is running; it ends when nothing is parked
	wakeAt  int64           // ep's read deadline: run wakes by then
	closed  bool
	failed  error         // epoll failed: parks go elsewhere
	stopped chan struct{} // closed once closeAll has finished
	wg      sync.WaitGroup

	// run's, kept for the next run (one runs at a time).
	events  []unix.EpollEvent
	ready   []readyConn
	expired []*parkable
}

var _ parkWaiter = (*epollWaiter)(nil)

const (
	maxDeadline = math.MaxInt64
	// epollBatch is how many events one epoll_wait returns at most.
	epollBatch = 128
	// parkEvents: readable, or the peer closed; one-shot. Level-triggered
	// (no EPOLLET) on purpose, see epollWaiter.
	parkEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT
)

// epollAdd registers fd in epfd; a var for the tests of a refusal.
var epollAdd = func(epfd, fd int, ev *unix.EpollEvent) error {
	return unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, ev)
}

// epollWait is epoll_wait; a var for the tests of a failure.
var epollWait = unix.EpollWait

// newEpollWaiter returns an epoll waiter; if epoll fails later, the
// connections it holds go on waiting in fallback.
func newEpollWaiter(log *slog.Logger, fallback parkWaiter) (parkWaiter, error) {
	w := &epollWaiter{log: log, base: time.Now(), fallback: fallback, stopped: make(chan struct{})}
	// Opened here to learn whether there is epoll at all; kept for the
	// first park.
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

// open makes the epoll descriptor; under w.mu (or before w is shared).
func (w *epollWaiter) open() error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("epoll_create1: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return fmt.Errorf("epoll descriptor: %w", err)
	}
	// A non-blocking descriptor goes into Go's poller; one that cannot
	// has no deadlines.
	ep := os.NewFile(uintptr(epfd), "epoll")
	raw, err := ep.SyscallConn()
	if err == nil {
		err = ep.SetReadDeadline(time.Time{})
	}
	if err != nil {
		ep.Close()
		return fmt.Errorf("epoll descriptor in the runtime poller: %w", err)
	}
	w.ep, w.epfd, w.raw, w.wakeAt = ep, epfd, raw, maxDeadline
	return nil
}

// shut closes the epoll descriptor; under w.mu, with nothing registered
// and run not waiting on it.
func (w *epollWaiter) shut() {
	if w.ep != nil {
		w.ep.Close()
		w.ep, w.epfd, w.raw = nil, -1, nil
	}
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
	if w.ep == nil {
		if err := w.open(); err != nil {
			// Out of descriptors, likely: the goroutine needs none.
			if !w.warned {
				w.warned = true
				w.log.Warn("idle HTTP/1 connections: no epoll descriptor; some wait in a goroutine each", "error", err)
			}
			w.mu.Unlock()
			return false
		}
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
	err = raw.Control(func(fd uintptr) { ctlErr = epollAdd(w.epfd, int(fd), &w.ev) })
	if err != nil || ctlErr != nil {
		w.drop(p)
		if !w.running {
			w.shut() // open for p alone, as run closes it when nothing is parked
		}
		w.mu.Unlock()
		if err != nil { // closed already
			p.Conn.Close()
			return true
		}
		return false
	}
	if !w.running {
		w.running = true
		w.wg.Add(1)
		go w.run()
	}
	if p.dl < w.wakeAt {
		// An error here is run's to find (it sets the deadline again).
		_ = w.setWake(p.dl)
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

// setWake makes ep's read deadline dl, which ends run's wait then; under
// w.mu.
func (w *epollWaiter) setWake(dl int64) error {
	w.wakeAt = dl
	var t time.Time
	switch dl {
	case maxDeadline:
	case math.MinInt64:
		t = time.Unix(1, 0) // now: closeAll
	default:
		t = w.base.Add(time.Duration(dl))
	}
	if err := w.ep.SetReadDeadline(t); err != nil {
		w.wakeAt = math.MinInt64 // none set: run tries again
		return fmt.Errorf("epoll descriptor deadline: %w", err)
	}
	return nil
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
	if w.events == nil {
		w.events = make([]unix.EpollEvent, epollBatch)
	}
	events, ready, expired := w.events, w.ready, w.expired
	var n int
	var werr error
	poll := func(fd uintptr) bool {
		n, werr = epollWait(int(fd), events, 0)
		return n > 0 || werr != nil
	}
	for {
		w.mu.Lock()
		if w.closed || len(w.heap) == 0 {
			w.running = false
			w.ready, w.expired = ready, expired // for the next run, which may start once w.mu is free
			if !w.closed {
				// Nothing parked (nothing registered: run took each
				// out): the descriptor goes, and so do the tables of
				// a crowd that has gone. (closeAll closes ep itself,
				// once its own epoll_ctl calls are done.)
				w.shut()
				w.heap, w.slots, w.free = nil, nil, nil
			}
			w.mu.Unlock()
			return
		}
		raw, epfd := w.raw, w.epfd
		if dl := w.heap[0].dl; dl != w.wakeAt {
			if err := w.setWake(dl); err != nil {
				w.mu.Unlock()
				w.fail(err)
				return
			}
		}
		w.mu.Unlock()

		n, werr = 0, nil
		err := raw.Read(poll)
		if errors.Is(werr, unix.EINTR) {
			continue
		}
		if werr != nil {
			err = fmt.Errorf("epoll_wait: %w", werr)
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			w.fail(err)
			return
		}
		w.mu.Lock()
		for _, ev := range events[:n] {
			// A registration of a connection closeAll took out meanwhile
			// may still report: its slot is empty or another's.
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
			if unregister(epfd, r.p, r.events) {
				go r.p.resume()
			} else {
				r.p.Conn.Close()
			}
			ready[i] = readyConn{}
		}
		ready = ready[:0]
		for i, p := range expired {
			unregister(epfd, p, 0)
			p.Conn.Close()
			expired[i] = nil
		}
		expired = expired[:0]
	}
}

// unregister takes p's socket out of the epoll set. For a connection epoll
// reported (events), it says whether a request may have begun: false when
// the peer closed it with nothing sent, or it failed, which the HTTP
// server need not be bothered with.
func unregister(epfd int, p *parkable, events uint32) bool {
	raw, err := p.TCPConn.SyscallConn()
	if err != nil {
		return false
	}
	live := true
	err = raw.Control(func(fd uintptr) {
		_ = unix.EpollCtl(epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
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
	n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0) // x/sys's: package syscall has no SYS_RECVFROM on linux/386
	if errno != 0 {
		// EAGAIN: nothing yet, and no FIN either (a spurious report); the
		// HTTP server waits for it as for any request.
		return errno == syscall.EAGAIN
	}
	return n > 0
}

// fail gives up on epoll after an epoll_wait error (or a deadline on its
// descriptor that cannot be set), on run's goroutine as run ends: the
// descriptor is closed, which takes every registration out with it; the
// connections parked go on waiting in the fallback, each until its own
// deadline, and so do later parks (park is false from now).
func (w *epollWaiter) fail(err error) {
	w.log.Error("idle HTTP/1 connections: the epoll waiter failed; each waits in a goroutine from now", "error", err)
	w.mu.Lock()
	w.failed = err
	w.running = false
	held := w.heap
	w.heap, w.slots, w.free = nil, nil, nil
	if !w.closed {
		// Once closeAll has begun, it closes the descriptor itself when
		// run has ended: it may still be using its number.
		w.shut()
	}
	w.mu.Unlock()
	for _, p := range held {
		var dl time.Time
		if p.dl != maxDeadline {
			dl = w.base.Add(time.Duration(p.dl))
		}
		// The fallback closes p itself if it is closed already.
		w.fallback.park(p, dl)
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
	epfd := w.epfd
	if w.ep != nil {
		_ = w.setWake(math.MinInt64) // cannot fail: ep is open, and in the poller (open)
	}
	w.mu.Unlock()
	for _, p := range held {
		unregister(epfd, p, 0)
		p.Conn.Close()
	}
	w.wg.Wait()
	w.mu.Lock()
	w.shut()
	w.mu.Unlock()
	close(w.stopped)
}

func (w *epollWaiter) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.heap)
}
