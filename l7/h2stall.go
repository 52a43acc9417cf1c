package l7

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// HTTP/2 streams whose client gives no flow-control credit. The client
// may keep its connection busy (batchConn's stall deadline never fires)
// while one stream's window stays shut and its handler, with the backend
// connection behind it, waits in Write for ever. nginx's send_timeout ends
// such a stream; so does this: a Write that has waited for timeouts.idle
// gets its stream reset (the write fails, the handler ends).
//
// x/net's per-stream write deadline cannot say this by itself: it resets
// the stream when it passes even if no write is waiting, which would end
// an event stream that pauses longer than the timeout. So the stream's
// writers record when their Write began, and a sweep every quarter of the
// timeout (one timer per server, running only while streams are open)
// puts a deadline in the past on the streams that waited too long.
//
// What the handler leaves in x/net's buffer (a small response, never
// flushed: the proxy's usual one) x/net writes after the handler returned,
// where the sweep cannot reach the stream any more (x/net then drops the
// ResponseWriter's state). That last write is bounded by x/net's own
// per-stream write deadline instead: the server's WriteTimeout is set to
// timeouts.idle, so x/net arms it when the stream opens, and the sweep
// moves it on for as long as the handler runs. Once the handler returns,
// the deadline left ends a tail that gets no credit between three
// quarters of the timeout and the whole of it later; a stream that
// completes only has its timer stopped (closeStream). The cost, per
// stream: x/net's timer (two allocations, BenchmarkH2ProxyServed). Less
// than arming a deadline as the handler returns (the same timer, and a
// message to the serve loop) or flushing before it (an extra DATA frame
// and round trip, and no automatic Content-Length).

// h2Stalls is the HTTP/2 server's set of open streams.
type h2Stalls struct {
	stall time.Duration
	// extend: the sweep moves x/net's per-stream write deadline on while
	// the handler runs (the server's WriteTimeout is stall); never past
	// the stream's start + limit (timeouts.write, longer than stall; 0:
	// none).
	extend bool
	limit  time.Duration

	mu    sync.Mutex
	ws    map[*h2StallWriter]struct{}
	timer *time.Timer // nil while no stream is open
}

func (s *h2Stalls) add(w *h2StallWriter) {
	s.mu.Lock()
	if s.ws == nil {
		s.ws = make(map[*h2StallWriter]struct{})
	}
	s.ws[w] = struct{}{}
	if s.timer == nil {
		s.timer = time.AfterFunc(s.stall/4, s.sweep)
	}
	s.mu.Unlock()
}

func (s *h2Stalls) remove(w *h2StallWriter) {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
	s.mu.Lock()
	delete(s.ws, w)
	if len(s.ws) == 0 && s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.mu.Unlock()
}

func (s *h2Stalls) sweep() {
	now := time.Now().UnixNano()
	stall := int64(s.stall)
	var late, due, slowBody []*h2StallWriter
	s.mu.Lock()
	for w := range s.ws {
		// A body read waiting that long, while no response write began
		// either: nothing moved on the stream either way, as
		// timeouts.idle means it. A bidi stream whose client only
		// listens (a gRPC subscription) stays.
		if r := w.reading.Load(); r != 0 && now-r >= stall && now-w.wrote.Load() >= stall {
			slowBody = append(slowBody, w)
		}
		if since := w.since.Load(); since != 0 && now-since >= stall {
			late = append(late, w)
		} else if s.extend && !w.fixed.Load() {
			// 0: x/net's own, from when the stream opened, at most
			// stall from now. Moved on once less than three quarters
			// are left, at about every sweep: a sweep may come half the
			// timeout late (a loaded machine) before a deadline passes
			// under a handler that runs. One message to the serve loop
			// per stream and sweep, for the streams that live that long.
			if dl := w.dl.Load(); dl == 0 || dl-now < stall*3/4 {
				due = append(due, w)
			}
		}
	}
	if s.timer != nil {
		s.timer.Reset(s.stall / 4)
	}
	s.mu.Unlock()
	for _, w := range late {
		w.reset()
	}
	for _, w := range slowBody {
		w.endBody()
	}
	for _, w := range due {
		w.mu.Lock()
		if !w.done && !w.fixed.Load() {
			w.moveDeadline(now)
		}
		w.mu.Unlock()
	}
}

// h2StallWriter is a stream's ResponseWriter as the handler gets it.
type h2StallWriter struct {
	http.ResponseWriter
	s     *h2Stalls
	since atomic.Int64 // when the Write in progress began, Unix ns; 0: none
	// The stream's write deadline as the sweep last set it, Unix ns (0:
	// x/net's, set when the stream opened), and when the handler began
	// (Unix ns; only with h2Stalls.limit).
	dl    atomic.Int64
	start int64

	// reading: when the request body Read in progress began, Unix ns;
	// 0: none (h2StallBody). wrote: when the last response write began.
	reading atomic.Int64
	wrote   atomic.Int64

	mu    sync.Mutex // done, and the deadline changes against the handler's return
	done  bool
	fixed atomic.Bool // the handler set a write deadline of its own; written under mu

	// dated: the final response's header is settled (setDate); date is
	// the Date value it was given, if it had none.
	dated bool
	date  [1]string
}

// setDate gives the final response the Date field from the HTTP/1
// server's once-a-second value (httpDate) unless it has one (the
// backend's), as its header is settled: x/net would format the time for
// every response without one (1.3 % of the CPU of a small proxied
// request). x/net copies the header as it is settled, so date's array
// need not outlive the handler. Once: later calls do nothing.
func (w *h2StallWriter) setDate() {
	if w.dated {
		return
	}
	w.dated = true
	h := w.ResponseWriter.Header()
	if _, ok := h["Date"]; !ok {
		w.date[0] = httpDate()
		h["Date"] = w.date[:]
	}
}

// WriteHeader settles the header of a final response (not a 1xx's, which
// goes out as it is, without a Date).
func (w *h2StallWriter) WriteHeader(code int) {
	if code >= 200 {
		w.setDate()
	}
	w.ResponseWriter.WriteHeader(code)
}

// moveDeadline puts the stream's write deadline stall after now, capped
// at its start + limit. Under w.mu, before the handler returned.
func (w *h2StallWriter) moveDeadline(now int64) error {
	dl := now + int64(w.s.stall)
	if w.s.limit > 0 {
		dl = min(dl, w.start+int64(w.s.limit))
	}
	if old := w.dl.Load(); old != 0 && dl <= old {
		return nil
	}
	w.dl.Store(dl)
	return http.NewResponseController(w.ResponseWriter).SetWriteDeadline(time.Unix(0, dl))
}

// h2StallChunk is the most one wait covers: x/net's Write waits until all
// of p is sent, so a large p read slowly but steadily would look stalled.
// One full-size DATA frame: a client that cannot credit that much within
// timeouts.idle counts as stalled.
const h2StallChunk = 16 << 10

func (w *h2StallWriter) Write(p []byte) (int, error) {
	w.setDate() // the implied WriteHeader(200)
	if len(p) == 0 {
		return w.ResponseWriter.Write(p) // the implied WriteHeader(200)
	}
	return writeSteps(p, h2StallChunk, w.writeStep)
}

// writeStep is one timed wait: the sweep resets the stream when it lasts.
func (w *h2StallWriter) writeStep(p []byte) (int, error) {
	now := time.Now().UnixNano()
	w.since.Store(now)
	w.wrote.Store(now)
	n, err := w.ResponseWriter.Write(p)
	w.since.Store(0)
	return n, err
}

// reset ends the stream: a write deadline in the past resets it at once,
// and the waiting Write fails.
func (w *h2StallWriter) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		http.NewResponseController(w.ResponseWriter).SetWriteDeadline(time.Unix(0, 1))
	}
}

// endBody ends a request body the client stopped sending: a read
// deadline in the past fails the waiting Read with a timeout, which the
// proxy answers 408 (nginx's client_body_timeout).
func (w *h2StallWriter) endBody() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		http.NewResponseController(w.ResponseWriter).SetReadDeadline(time.Unix(0, 1))
	}
}

// h2StallBody is a request body whose Reads the sweep times: one that
// waits timeouts.idle for the client's next DATA frame, with no response
// written meanwhile, ends the body.
// Without it a client could hold a stream, its handler and a backend
// connection for ever by sending one byte of a body and then only PINGs
// (x/net has no per-stream timer for it but a total ReadTimeout, which
// would also end a large upload that is slow but steady).
type h2StallBody struct {
	io.ReadCloser
	w *h2StallWriter
}

func (b *h2StallBody) Read(p []byte) (int, error) {
	b.w.reading.Store(time.Now().UnixNano())
	n, err := b.ReadCloser.Read(p)
	b.w.reading.Store(0)
	return n, err
}

// FlushError waits like Write (a flush blocks on the stream's window the
// same way: a streaming handler's small writes each flushed wait here,
// not in Write), and hands on x/net's error, which http.ResponseController
// would otherwise lose to Flush.
func (w *h2StallWriter) FlushError() error {
	w.setDate() // the implied WriteHeader(200)
	now := time.Now().UnixNano()
	w.since.Store(now)
	w.wrote.Store(now)
	err := http.NewResponseController(w.ResponseWriter).Flush()
	w.since.Store(0)
	return err
}

// Flush keeps http.Flusher for handlers that assert it.
func (w *h2StallWriter) Flush() { w.FlushError() }

// SetWriteDeadline serves http.ResponseController: the handler's own
// deadline replaces the one the sweep moves on. The zero time hands the
// stream back to the sweep: the stall timeout is the server's, as nginx's
// send_timeout, not the handler's to lift. Under mu, so that a move the
// sweep decided on cannot overtake the handler's deadline.
func (w *h2StallWriter) SetWriteDeadline(t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if t.IsZero() && w.s.extend {
		w.fixed.Store(false)
		w.dl.Store(0)
		return w.moveDeadline(time.Now().UnixNano())
	}
	w.fixed.Store(true)
	return http.NewResponseController(w.ResponseWriter).SetWriteDeadline(t)
}

// CloseNotify and Push are x/net's writer's, which has both: handlers
// assert them on the writer they get (middleware/extras.go).
func (w *h2StallWriter) CloseNotify() <-chan bool {
	return w.ResponseWriter.(http.CloseNotifier).CloseNotify()
}

func (w *h2StallWriter) Push(target string, opts *http.PushOptions) error {
	return w.ResponseWriter.(http.Pusher).Push(target, opts)
}

// Unwrap serves http.ResponseController.
func (w *h2StallWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var (
	_ http.CloseNotifier = (*h2StallWriter)(nil)
	_ http.Pusher        = (*h2StallWriter)(nil)
)
