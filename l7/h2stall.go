package l7

import (
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

// h2Stalls is the HTTP/2 server's set of open streams.
type h2Stalls struct {
	stall time.Duration
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
	var late []*h2StallWriter
	s.mu.Lock()
	for w := range s.ws {
		if since := w.since.Load(); since != 0 && now-since >= int64(s.stall) {
			late = append(late, w)
		}
	}
	if s.timer != nil {
		s.timer.Reset(s.stall / 4)
	}
	s.mu.Unlock()
	for _, w := range late {
		w.reset()
	}
}

// h2StallWriter is a stream's ResponseWriter as the handler gets it.
type h2StallWriter struct {
	http.ResponseWriter
	since atomic.Int64 // when the Write in progress began, Unix ns; 0: none
	// The handler's goroutine's: bytes written, and whether some may sit
	// in x/net's buffer (see finish).
	wrote     int64
	unflushed bool

	mu   sync.Mutex // done, and the reset against the handler's return
	done bool
}

// h2StallChunk is the most one wait covers: x/net's Write waits until all
// of p is sent, so a large p read slowly but steadily would look stalled.
// One full-size DATA frame: a client that cannot credit that much within
// timeouts.idle counts as stalled.
const h2StallChunk = 16 << 10

func (w *h2StallWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return w.ResponseWriter.Write(p) // the implied WriteHeader(200)
	}
	return writeSteps(p, h2StallChunk, w.writeStep)
}

// writeStep is one timed wait: the sweep resets the stream when it lasts.
func (w *h2StallWriter) writeStep(p []byte) (int, error) {
	w.since.Store(time.Now().UnixNano())
	n, err := w.ResponseWriter.Write(p)
	w.since.Store(0)
	w.wrote += int64(n)
	w.unflushed = true
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

// FlushError waits like Write (a flush blocks on the stream's window the
// same way: a streaming handler's small writes each flushed wait here,
// not in Write), and hands on x/net's error, which http.ResponseController
// would otherwise lose to Flush.
func (w *h2StallWriter) FlushError() error {
	w.since.Store(time.Now().UnixNano())
	err := http.NewResponseController(w.ResponseWriter).Flush()
	w.since.Store(0)
	w.unflushed = false
	return err
}

// h2BufSize is x/net's handler-side buffer (handlerChunkWriteSize): a
// response that wrote more has sent its header.
const h2BufSize = 4 << 10

// finish flushes, while the sweep still sees it, the tail of a response
// that x/net would otherwise flush after the handler returned, where a
// stream left without credit would wait for ever, out of the sweep's
// reach. Only for a response whose header went already: a small one's
// single flush at the end is what gives it its Content-Length.
func (w *h2StallWriter) finish() {
	if w.unflushed && w.wrote > h2BufSize {
		w.FlushError()
	}
}

// Flush keeps http.Flusher for handlers that assert it.
func (w *h2StallWriter) Flush() { w.FlushError() }

// Unwrap serves http.ResponseController.
func (w *h2StallWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
