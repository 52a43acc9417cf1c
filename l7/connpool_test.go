package l7

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"
)

// getClose makes one request on a new connection that asks to close.
func getClose(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })

// waitIdleWorkers waits until n workers are idle.
func waitIdleWorkers(t *testing.T, p *connWorkers, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.mu.Lock()
		got := len(p.idle)
		p.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d idle workers, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestConnWorkersReused: connections one after another run on one
// goroutine, which waits between them instead of exiting.
func TestConnWorkersReused(t *testing.T) {
	srv, addr := startH1Server(t, okHandler, ServerOptions{})
	p := &srv.h1.workers
	for range 20 {
		getClose(t, addr)
		waitIdleWorkers(t, p, 1)
	}
	if n := p.started.Load(); n != 1 {
		t.Fatalf("%d workers started for 20 connections one after another, want 1", n)
	}
}

// TestConnWorkersBounded: after a burst of concurrent connections at most
// maxIdleWorkers wait; the rest exit. Close ends the waiting ones.
func TestConnWorkersBounded(t *testing.T) {
	release := make(chan struct{})
	var arrived sync.WaitGroup
	const conns = maxIdleWorkers + 40
	arrived.Add(conns)
	srv, addr := startH1Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Done()
		<-release
		io.WriteString(w, "ok")
	}), ServerOptions{})
	p := &srv.h1.workers
	base := runtime.NumGoroutine()
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() { defer wg.Done(); getClose(t, addr) }()
	}
	arrived.Wait()
	close(release)
	wg.Wait()
	waitIdleWorkers(t, p, maxIdleWorkers)
	if n := p.started.Load(); n != conns {
		t.Fatalf("%d workers started for %d concurrent connections", n, conns)
	}
	// The workers beyond the bound exit (the clients' goroutines are gone).
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base+maxIdleWorkers {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, want at most %d", runtime.NumGoroutine(), base+maxIdleWorkers)
		}
		time.Sleep(time.Millisecond)
	}
	srv.Close()
	waitIdleWorkers(t, p, 0)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after Close, want at most %d", runtime.NumGoroutine(), base)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestConnWorkersExpire: a worker idle for workerIdleTimeout exits; one
// used meanwhile stays.
func TestConnWorkersExpire(t *testing.T) {
	// Restored after the server's cleanup has closed it (cleanups run last
	// first): an armed expiry reads the variable.
	old := workerIdleTimeout
	t.Cleanup(func() { workerIdleTimeout = old })
	workerIdleTimeout = 200 * time.Millisecond
	srv, addr2 := startH1Server(t, okHandler, ServerOptions{})
	p := &srv.h1.workers
	getClose(t, addr2)
	waitIdleWorkers(t, p, 1)
	waitIdleWorkers(t, p, 0) // expired
	getClose(t, addr2)
	waitIdleWorkers(t, p, 1)
	if n := p.started.Load(); n != 2 {
		t.Fatalf("%d workers started, want 2 (the first expired)", n)
	}
}
