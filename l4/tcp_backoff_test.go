package l4

import (
	"context"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestTCPAcceptBackoffEndsAtShutdown: Shutdown and Close end Serve while it
// waits out a failed accept's backoff (out of file descriptors, say),
// instead of after it: a reload waits for a removed listener's Serve. The
// backoff is an hour here, so a Serve that sleeps through it cannot pass.
func TestTCPAcceptBackoffEndsAtShutdown(t *testing.T) {
	realAccept, realMin, realMax := acceptTCP, acceptBackoffMin, acceptBackoffMax
	t.Cleanup(func() { acceptTCP, acceptBackoffMin, acceptBackoffMax = realAccept, realMin, realMax })
	acceptBackoffMin, acceptBackoffMax = time.Hour, time.Hour
	failed := make(chan struct{}, 2)
	var mu sync.Mutex
	acceptTCP = func(ln *net.TCPListener) (*net.TCPConn, error) {
		mu.Lock()
		defer mu.Unlock()
		failed <- struct{}{}
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	for _, stop := range []string{"Shutdown", "Close"} {
		ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		s := &TCPServer{}
		done := make(chan error, 1)
		go func() { done <- s.Serve(ln) }()
		select {
		case <-failed:
		case <-time.After(10 * time.Second):
			t.Fatal("no accept within 10 s")
		}
		if stop == "Shutdown" {
			s.Shutdown(context.Background())
		} else {
			s.Close()
		}
		select {
		case err := <-done:
			if err != ErrServerClosed {
				t.Fatalf("%s: Serve = %v, want ErrServerClosed", stop, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: Serve still waiting out the accept backoff after 10 s", stop)
		}
	}
}
