package server

import (
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestEpollParkWaitFails: when epoll_wait fails, the epoll descriptor is
// closed and no parked connection is lost: each goes on waiting in a
// goroutine of its own (goWaiter) until its next request, which hands it
// back, or its own idle deadline, which closes it; later parks wait there
// too, and closeAll closes them.
func TestEpollParkWaitFails(t *testing.T) {
	var failing atomic.Bool
	old := epollWait
	epollWait = func(epfd int, events []unix.EpollEvent, msec int) (int, error) {
		if failing.Load() {
			return 0, unix.EBADF
		}
		return old(epfd, events, msec)
	}
	// Registered before the rig's, so run after its closeAll: no waiter
	// is running when the var is put back.
	t.Cleanup(func() { epollWait = old })
	r := newParkRig(t)
	base := openFDs(t)

	const n = 3
	clients := r.parkN(n)
	cShort, pShort := r.pair()
	pShort.Park(time.Now().Add(300 * time.Millisecond))
	r.waitLen(n + 1)
	if got := openFDs(t); got != base+2*(n+1)+1 {
		t.Fatalf("%d descriptors open, %d before: not the connections' and one epoll descriptor", got, base)
	}

	// The first request wakes the waiter, whose epoll_wait then fails.
	failing.Store(true)
	clients[0].Write([]byte("G"))
	p := r.next()
	var b [1]byte
	if _, err := p.Read(b[:]); err != nil || b[0] != 'G' {
		t.Fatalf("the request's first byte: %q, %v", b, err)
	}
	p.Close()
	// The epoll descriptor is gone (2*n+2 sockets are left: the woken
	// connection's two are closed just now, and the one with a short
	// deadline may have timed out already).
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := openFDs(t)
		if got == base+2*n || got == base+2*n-2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors open, %d before: the epoll descriptor was not closed", got, base)
		}
		time.Sleep(time.Millisecond)
	}

	// The others were not closed: each is handed back at its request.
	for _, c := range clients[1:] {
		c.Write([]byte("G"))
		p := r.next()
		if _, err := p.Read(b[:]); err != nil || b[0] != 'G' {
			t.Fatalf("the request's first byte: %q, %v", b, err)
		}
		p.Close()
	}
	// The short deadline was kept.
	wantEOF(t, cShort)

	// Later parks go to the goroutines, and closeAll closes them.
	c, p := r.pair()
	p.Park(time.Now().Add(time.Minute))
	r.waitLen(1)
	r.l.parked.closeAll()
	wantEOF(t, c)
	r.waitLen(0) // its goroutine ended
}
