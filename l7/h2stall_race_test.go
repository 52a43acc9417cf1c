package l7

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestH2StallSweepAcrossEnd: a sweep that goes through the set while a
// stream ends acts on nothing of that stream once it ended. The stream's
// end marks its writer done, then takes it out of the set; a sweep that
// holds the set in between still finds the writer there, and must find it
// done when it acts on it (after other streams' resets or moves, each a
// message to a serve loop): the stream's deadline is not moved.
//
// The interleaving is made, not hoped for: the test holds the set's lock
// until both the sweep and the ending stream wait for it, the sweep
// first (sync.Mutex wakes its waiters in order); a stalled stream whose
// reset blocks holds the sweep until the stream has ended.
func TestH2StallSweepAcrossEnd(t *testing.T) {
	s := &h2Stalls{stall: time.Hour, extend: true}
	held := &blockingDeadlineWriter{ResponseWriter: httptest.NewRecorder(), entered: make(chan struct{}), release: make(chan struct{})}
	stalled := &h2StallWriter{ResponseWriter: held, s: s}
	s.add(stalled)
	stalled.since.Store(1) // a Write waiting since 1970: reset by the sweep
	ending := &deadlineWriter{ResponseWriter: httptest.NewRecorder()}
	w := &h2StallWriter{ResponseWriter: ending, s: s}
	s.add(w) // young (no deadline moved yet): the sweep moves it on

	s.mu.Lock()
	swept := make(chan any, 1)
	go func() {
		defer func() { swept <- recover() }()
		s.sweep()
	}()
	waitLockedIn(t, "(*h2Stalls).sweep")
	removed := make(chan struct{})
	go func() {
		defer close(removed)
		s.remove(w)
	}()
	waitLockedIn(t, "(*h2Stalls).remove")
	s.mu.Unlock()
	<-held.entered // the sweep went through the set and resets the stalled stream
	<-removed      // the ending stream has ended
	close(held.release)
	p := <-swept
	if p != nil {
		w.mu.Unlock() // the panicking sweep held it
	}
	s.remove(stalled)
	if p != nil {
		t.Fatalf("the sweep acted on a writer whose stream had ended: %v", p)
	}
	if n := ending.count(); n != 0 {
		t.Fatalf("the sweep set %d write deadlines on a stream that had ended", n)
	}
}

// blockingDeadlineWriter's SetWriteDeadline waits for release.
type blockingDeadlineWriter struct {
	http.ResponseWriter
	once             sync.Once
	entered, release chan struct{}
}

func (b *blockingDeadlineWriter) SetWriteDeadline(time.Time) error {
	b.once.Do(func() { close(b.entered) })
	<-b.release
	return nil
}

// waitLockedIn waits until a goroutine with fn on its stack sleeps in
// sync.Mutex.Lock (queued on the mutex, not spinning).
func waitLockedIn(t *testing.T, fn string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := runtime.Stack(buf, true)
		for g := range strings.SplitSeq(string(buf[:n]), "\n\n") {
			if strings.Contains(g, "[sync.Mutex.Lock") && strings.Contains(g, fn) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no goroutine in %s waits for a mutex", fn)
		}
		runtime.Gosched()
	}
}

// TestH2StallWritersUnderSweeps: streams that end while sweeps run,
// round after round, through the real HTTP/2 server (run with -race).
// Each handler flushes, sets a write deadline of its own or hands it back,
// declares a trailer, and returns only once a sweep has moved its stream's
// deadline: every round ends streams with sweeps about. Every response
// arrives whole, with its Date and trailer.
func TestH2StallWritersUnderSweeps(t *testing.T) {
	const (
		rounds  = 3
		streams = 24
	)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw, ok := w.(*h2StallWriter)
		if !ok {
			http.Error(w, "not the stall writer", http.StatusInternalServerError)
			return
		}
		rc := http.NewResponseController(w)
		w.Header().Set("Trailer", "X-Id")
		io.WriteString(w, r.URL.Path)
		if err := rc.Flush(); err != nil {
			return
		}
		fixed := r.URL.Query().Get("fixed") == "1"
		if fixed {
			rc.SetWriteDeadline(time.Now().Add(time.Minute))
		}
		rc.SetWriteDeadline(time.Time{}) // back to the sweep: stall from now
		// A sweep moves it on again once less than three quarters of the
		// stall timeout are left: wait for that.
		set := sw.dl.Load()
		for deadline := time.Now().Add(30 * time.Second); sw.dl.Load() == set; {
			if time.Now().After(deadline) {
				return // the client sees no trailer
			}
			time.Sleep(10 * time.Millisecond)
		}
		w.Header().Set("X-Id", r.URL.Path)
	})
	f := startH2Front(t, h, ServerOptions{IdleTimeout: 2 * time.Second})
	tr := h2Client(true)
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: time.Minute}
	for round := range rounds {
		var wg sync.WaitGroup
		errs := make(chan error, streams)
		for i := range streams {
			wg.Add(1)
			go func() {
				defer wg.Done()
				path := fmt.Sprintf("/r%d-s%d", round, i)
				resp, err := c.Get(f.url(true, path) + "?fixed=" + fmt.Sprint(i%2))
				if err != nil {
					errs <- err
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case err != nil:
					errs <- fmt.Errorf("%s: %w", path, err)
				case resp.StatusCode != http.StatusOK || string(body) != path:
					errs <- fmt.Errorf("%s: %d %q", path, resp.StatusCode, body)
				case resp.Header.Get("Date") == "":
					errs <- fmt.Errorf("%s: no Date", path)
				case resp.Trailer.Get("X-Id") != path:
					errs <- fmt.Errorf("%s: trailer %q", path, resp.Trailer.Get("X-Id"))
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
}

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
