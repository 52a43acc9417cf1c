package server

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/proxynow/proxynow/l4"
)

// connTracker is the handler of one tcp_route on one listener: it serves
// connections with the route's handler and remembers them, so that when a
// reload removes the route (or changes its service) they can be drained
// and, after the grace period, closed. A tracker whose route is unchanged
// by a reload is carried into the new generation as it is, connections and
// all, so those connections are never touched.
type connTracker struct {
	h  l4.Handler
	fp string // what the route is: a new generation reuses the tracker only if equal

	mu       sync.Mutex
	conns    map[*l4.Conn]struct{}
	draining bool
	empty    chan struct{} // closed when conns drains to zero while draining
}

var _ l4.Handler = (*connTracker)(nil)

func newConnTracker(h l4.Handler, fp string) *connTracker {
	return &connTracker{h: h, fp: fp, conns: map[*l4.Conn]struct{}{}}
}

func (t *connTracker) ServeTCP(ctx context.Context, c *l4.Conn) {
	t.mu.Lock()
	t.conns[c] = struct{}{}
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.conns, c)
		if len(t.conns) == 0 && t.empty != nil {
			close(t.empty)
			t.empty = nil
		}
		t.mu.Unlock()
	}()
	t.h.ServeTCP(ctx, c)
}

// drain waits until every connection has ended or ctx is done, then closes
// those left; it returns how many it closed. Connections the listener
// hands the tracker after drain began (a dispatch racing the reload) are
// counted and closed alike.
func (t *connTracker) drain(ctx context.Context) int {
	t.mu.Lock()
	t.draining = true
	var empty chan struct{}
	if len(t.conns) > 0 {
		empty = make(chan struct{})
		t.empty = empty
	}
	t.mu.Unlock()
	if empty == nil {
		return 0
	}
	select {
	case <-empty:
		return 0
	case <-ctx.Done():
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(t.conns)
	for c := range t.conns {
		c.Close() // the tunnel sees its client socket fail and closes the backend side
	}
	return n
}

// reqTracker is the handler of one http_route on one listener: the route's
// middlewares and service, plus a count of the requests in flight. A
// request costs two atomic adds; a protocol upgrade (WebSocket), which can
// last for hours, also registers a cancel function, so that when a reload
// removes the route the upgraded connection can be closed once the grace
// period is over. Ordinary requests on a removed route run to their end:
// their handlers hold the old generation's objects, which are retired only
// after they finish or the grace period ends.
type reqTracker struct {
	h  http.Handler
	fp string

	n        atomic.Int64
	draining atomic.Bool
	// zero is signalled (capacity 1) when n reaches 0 while draining. It
	// is made by drain, before draining is set, as upgrades is by the first
	// upgrade: a configuration has thousands of trackers, few ever drained
	// or upgraded.
	zero chan struct{}

	mu       sync.Mutex
	upgrades map[*context.CancelFunc]struct{}
	killed   bool
}

func newReqTracker(h http.Handler, fp string) *reqTracker {
	return &reqTracker{h: h, fp: fp}
}

func (t *reqTracker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t.n.Add(1)
	defer t.done()
	if up := r.Header["Upgrade"]; len(up) == 0 || up[0] == "" {
		t.h.ServeHTTP(w, r)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	t.mu.Lock()
	if t.killed {
		t.mu.Unlock()
		writeUnavailable(w)
		return
	}
	if t.upgrades == nil {
		t.upgrades = map[*context.CancelFunc]struct{}{}
	}
	t.upgrades[&cancel] = struct{}{}
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.upgrades, &cancel)
		t.mu.Unlock()
	}()
	t.h.ServeHTTP(w, r.WithContext(ctx))
}

func writeUnavailable(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	http.Error(w, "route removed by a configuration reload", http.StatusServiceUnavailable)
}

func (t *reqTracker) done() {
	if t.n.Add(-1) == 0 && t.draining.Load() {
		select {
		case t.zero <- struct{}{}:
		default:
		}
	}
}

// drain waits until no request is in flight or ctx is done; then it
// cancels the upgraded connections left and reports how many requests were
// still running.
func (t *reqTracker) drain(ctx context.Context) int64 {
	t.mu.Lock()
	if t.zero == nil {
		t.zero = make(chan struct{}, 1)
	}
	t.mu.Unlock()
	t.draining.Store(true) // after zero is set: done reads it once it sees draining
	for t.n.Load() > 0 {
		select {
		case <-t.zero:
		case <-ctx.Done():
			t.mu.Lock()
			t.killed = true
			for c := range t.upgrades {
				(*c)()
			}
			t.mu.Unlock()
			return t.n.Load()
		}
	}
	return 0
}
