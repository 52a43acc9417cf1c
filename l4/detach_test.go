package l4

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// detacher detaches every connection and hands it to the test.
func detacher() (Handler, <-chan *Conn) {
	ch := make(chan *Conn, 4)
	return HandlerFunc(func(_ context.Context, c *Conn) {
		c.Detach()
		ch <- c
	}), ch
}

// waitActive waits until s counts n open connections.
func waitActive(t *testing.T, s *TCPServer, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.Active() != n {
		if time.Now().After(deadline) {
			t.Fatalf("Active = %d, want %d", s.Active(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDetachCounts: a detached connection stays on the server's books after
// ServeTCP returns — it counts toward MaxConnections — until it is closed.
func TestDetachCounts(t *testing.T) {
	h, got := detacher()
	s := &TCPServer{Handler: h, MaxConnections: 1}
	addr := startTCP(t, s)
	dial(t, addr)
	c := <-got
	waitActive(t, s, 1)
	// The refusal is a reset, which may already fail the dial.
	if extra, err := net.Dial("tcp", addr); err == nil {
		expectClosed(t, extra, 5*time.Second)
		extra.Close()
	}
	if s.Rejected() != 1 {
		t.Fatalf("Rejected = %d, want 1", s.Rejected())
	}
	c.Close()
	c.Close() // a second Close does not take it off the books twice
	waitActive(t, s, 0)
}

// TestDetachShutdown: Shutdown waits for a detached connection and closes it
// when its context ends; a detached connection closed in time lets Shutdown
// return nil.
func TestDetachShutdown(t *testing.T) {
	h, got := detacher()
	s := &TCPServer{Handler: h}
	addr := startTCP(t, s)
	client := dial(t, addr)
	<-got
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want the context's error", err)
	}
	expectClosed(t, client, 5*time.Second)
	if s.Active() != 0 {
		t.Fatalf("Active = %d after Shutdown", s.Active())
	}

	h2, got2 := detacher()
	s2 := &TCPServer{Handler: h2}
	dial(t, startTCP(t, s2))
	c := <-got2
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- s2.Shutdown(ctx)
	}()
	c.Close()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown = %v after the detached connection closed", err)
	}
}

// TestDetachAfterClose: a connection closed before its handler detaches it
// is taken off the books all the same.
func TestDetachAfterClose(t *testing.T) {
	s := &TCPServer{Handler: HandlerFunc(func(_ context.Context, c *Conn) {
		c.Close()
		c.Detach()
	})}
	addr := startTCP(t, s)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	expectClosed(t, c, 5*time.Second)
	waitActive(t, s, 0)
}
