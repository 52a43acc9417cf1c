package l7

import (
	"context"
	"net/netip"
	"sync"
	"time"
)

// h1ctx is the context of a request on an h1 connection. It is canceled
// when the handler returns or the watcher sees the client go, like
// net/http's, but costs one small allocation: its Done channel is made only
// if someone asks for it, and it implements AfterFunc, so context.AfterFunc
// and context.WithCancel over it register a callback instead of a child
// map entry (or, for an unknown context type, a goroutine).
type h1ctx struct {
	context.Context // the connection's values; never canceled itself

	mu     sync.Mutex
	done   chan struct{}
	err    error
	afters []*h1after
	// waker is a connection whose blocked read cancel ends (setWaker):
	// the upstream fast path's wait for a response, registered without
	// the allocations of a context.AfterFunc.
	waker      interface{ SetReadDeadline(time.Time) error }
	wakerFired bool
	// peer is the connection's remote address, parsed once per
	// connection: the Entry reads it here instead of parsing RemoteAddr
	// for every request. Invalid when RemoteAddr is not an address.
	peer netip.Addr
	// info is the reqInfo allocated with the request (h1req), until the
	// Entry takes it (takeInfo).
	info *reqInfo
}

// takeInfo returns the reqInfo allocated with the request, once; nil after
// the first call. Only the request's handler goroutine calls it (the
// Entry, which runs once per request).
func (c *h1ctx) takeInfo() *reqInfo {
	ri := c.info
	c.info = nil
	return ri
}

type h1after struct {
	f    func()
	done bool // ran or stopped; guarded by the context's mu
}

func (c *h1ctx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err != nil {
			close(c.done)
		}
	}
	return c.done
}

func (c *h1ctx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// AfterFunc arranges for f to run in its own goroutine once c is canceled
// (at once if it is); stop prevents that if f has not started.
func (c *h1ctx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	a := &h1after{f: f}
	c.afters = append(c.afters, a)
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if a.done {
			return false
		}
		a.done = true
		return true
	}
}

// cancel cancels c with err (once).
func (c *h1ctx) cancel(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	if c.waker != nil {
		c.waker.SetReadDeadline(aLongTimeAgo)
		c.wakerFired = true
	}
	afters := c.afters
	c.afters = nil
	var run []func()
	for _, a := range afters {
		if !a.done {
			a.done = true
			run = append(run, a.f)
		}
	}
	c.mu.Unlock()
	for _, f := range run {
		go f()
	}
}

// setWaker arranges for cancel to wake a read blocked on nc (one at a
// time); false if c is canceled already.
func (c *h1ctx) setWaker(nc interface{ SetReadDeadline(time.Time) error }) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return false
	}
	c.waker, c.wakerFired = nc, false
	return true
}

// clearWaker undoes setWaker; false if cancel woke the connection (its
// read deadline is then in the past).
func (c *h1ctx) clearWaker() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waker = nil
	return !c.wakerFired
}

// wakerOf returns the h1ctx under ctx (directly, or the reqInfo's), nil
// for any other context.
func wakerOf(ctx context.Context) *h1ctx {
	switch c := ctx.(type) {
	case *h1ctx:
		return c
	case *reqInfo:
		w, _ := c.Context.(*h1ctx)
		return w
	}
	return nil
}

// afterFuncer is what context.AfterFunc looks for in a parent context.
type afterFuncer interface {
	AfterFunc(func()) func() bool
}
