package l7

import (
	"sync"
	"testing"
	"time"
)

// TestConnWorkersChurn: with workers expiring almost as soon as they wait,
// hand-offs race expiry (and, at the end, Close): every connection is still
// served exactly once, and no worker is left (goleak in TestMain).
func TestConnWorkersChurn(t *testing.T) {
	defer func(d time.Duration) { workerIdleTimeout = d }(workerIdleTimeout)
	workerIdleTimeout = time.Millisecond
	srv, addr := startH1Server(t, okHandler, ServerOptions{})
	p := &srv.h1.workers
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				getClose(t, addr)
				if (i+g)%7 == 0 {
					time.Sleep(2 * time.Millisecond) // let the idle ones expire
				}
			}
		})
	}
	wg.Wait()
	if n := p.started.Load(); n < 1 || n > 200 {
		t.Fatalf("%d workers started for 200 connections", n)
	}
	// The server is closed (and the variable restored) in a cleanup:
	// close it first so no expiry reads workerIdleTimeout meanwhile.
	srv.Close()
	waitIdleWorkers(t, p, 0)
}
