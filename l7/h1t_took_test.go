package l7

import (
	"testing"
	"time"
)

// TestH1TransportHeaderDeadlineFromTake: the response-header deadline runs
// from when the request took its connection (h1Conn.took), never from an
// earlier request's: a connection reused after idling longer than the
// header timeout is answered, and a silent backend on it still gets the
// whole timeout.
func TestH1TransportHeaderDeadlineFromTake(t *testing.T) {
	addr := answerBackend(t, 0)
	tr := newH1(addr)
	tr.headerTimeout = 500 * time.Millisecond
	defer tr.CloseIdleConnections()
	for i := range 2 {
		if _, body, err := h1Get(t, tr, "GET", "/", nil); err != nil || body != "ok" {
			t.Fatalf("request %d: %v %q", i, err, body)
		}
		// Idle longer than the header timeout: the time must pass.
		time.Sleep(tr.headerTimeout + 200*time.Millisecond)
	}
	tr.mu.Lock()
	pooled := len(tr.idle)
	tr.mu.Unlock()
	if pooled != 1 {
		t.Fatalf("%d idle connections, want the one reused", pooled)
	}
	start := time.Now()
	_, _, err := h1Get(t, tr, "GET", "/silent", nil)
	if took := time.Since(start); !isTimeout(err) || took < tr.headerTimeout {
		t.Fatalf("silent backend on a reused connection: %v after %v, want a timeout after %v or more", err, took, tr.headerTimeout)
	}
}
