package l7

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// deadlineWriter records the write deadlines set on it.
type deadlineWriter struct {
	http.ResponseWriter
	mu  sync.Mutex
	dls []time.Time
}

func (d *deadlineWriter) SetWriteDeadline(t time.Time) error {
	d.mu.Lock()
	d.dls = append(d.dls, t)
	d.mu.Unlock()
	return nil
}

func (d *deadlineWriter) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.dls)
}

// TestH2StallWriterReuse: a pooled stall writer that serves a new stream
// is not touched by what a sweep decided about its previous one (taken
// from the set before that stream ended): neither reset nor moved on. The
// new stream is, once a sweep finds it.
func TestH2StallWriterReuse(t *testing.T) {
	s := &h2Stalls{stall: time.Hour, extend: true}
	first := &deadlineWriter{ResponseWriter: httptest.NewRecorder()}
	w := &h2StallWriter{ResponseWriter: first, s: s}
	s.add(w)
	old := stallRef{w, w.gen.Load()}
	s.end(w)

	// Reused, as putStallWriter and getStallWriter leave it, for a second
	// stream.
	second := &deadlineWriter{ResponseWriter: httptest.NewRecorder()}
	w.mu.Lock()
	w.done = false
	w.mu.Unlock()
	w.ResponseWriter = second
	s.add(w)
	defer s.end(w)

	w.reset(old.gen)
	w.mu.Lock()
	if !w.done && w.gen.Load() == old.gen {
		t.Error("the generation a sweep took before the first stream ended still matches")
	}
	w.mu.Unlock()
	if n := first.count() + second.count(); n != 0 {
		t.Fatalf("a stale reset set %d write deadlines", n)
	}

	// The second stream's own generation: reset reaches it.
	w.reset(w.gen.Load())
	if second.count() != 1 || first.count() != 0 {
		t.Fatalf("reset of the current stream: %d deadlines on it, %d on the first", second.count(), first.count())
	}
	if dl := second.dls[0]; !dl.Before(time.Now()) {
		t.Fatalf("reset set the deadline %v, not one in the past", dl)
	}
}

// TestH2StallWriterPooled: the writer a request got is cleared as it goes
// back to the pool: no deadline, write start, Date or stream is left for
// the next one.
func TestH2StallWriterPooled(t *testing.T) {
	s := &h2Stalls{stall: time.Hour}
	rec := httptest.NewRecorder()
	w := getStallWriter(rec, s)
	s.add(w)
	w.start = 1
	w.dl.Store(2)
	w.since.Store(3)
	w.fixed.Store(true)
	w.Write([]byte("x"))
	gen := w.gen.Load()
	s.end(w)
	putStallWriter(w)
	// Taken back out by hand: the pool need not return it.
	switch {
	case w.ResponseWriter != nil || w.s != nil:
		t.Error("the stream's writer or set is kept")
	case w.start != 0 || w.dl.Load() != 0 || w.since.Load() != 0 || w.fixed.Load():
		t.Error("the stream's deadlines are kept")
	case w.dated:
		t.Error("the stream's Date is kept")
	case w.done:
		t.Error("the writer is left done")
	case w.gen.Load() == gen:
		t.Error("the generation did not change as the stream ended")
	}
	if rec.Header().Get("Date") == "" {
		t.Error("the response got no Date")
	}
}
