package l7

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

// doneBeforeCtx is a context that is already canceled and whose AfterFunc
// runs f in its own goroutine, as context.AfterFunc does, but returns only
// once f has run: what happens when another core picks the goroutine up
// at once, before the transport goes on to put its header deadline.
type doneBeforeCtx struct{ context.Context }

func (c doneBeforeCtx) AfterFunc(f func()) func() bool {
	ran := make(chan struct{})
	go func() { f(); close(ran) }()
	<-ran
	return func() bool { return false }
}

// TestH1TransportWakeBeforeHeaderDeadline: a wake-up that lands before the
// response-header deadline is put on the socket (a pooled connection whose
// kept deadline is too old to keep) is not overwritten by it: the request
// ends at once, not when the header timeout expires.
func TestH1TransportWakeBeforeHeaderDeadline(t *testing.T) {
	addr := answerBackend(t, 0)
	tr := newH1(addr)
	tr.headerTimeout = 3 * time.Second
	defer tr.CloseIdleConnections()
	// A pooled connection (a canceled context cannot dial), idle longer
	// than headerTimeout/hdrSlack: the next request puts its own deadline.
	if _, _, err := h1Get(t, tr, "GET", "/", nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(tr.headerTimeout/hdrSlack + 100*time.Millisecond)
	base, cancel := context.WithCancel(context.Background())
	cancel()
	req, _ := http.NewRequestWithContext(doneBeforeCtx{base}, "GET", "http://"+addr+"/silent", nil)
	start := time.Now()
	_, err := tr.RoundTrip(req)
	if took := time.Since(start); !errors.Is(err, context.Canceled) || took >= tr.headerTimeout {
		t.Fatalf("RoundTrip with its context done = %v after %v; want context.Canceled at once, not at the header timeout", err, took)
	}
}
