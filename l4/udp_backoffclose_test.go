package l4

import (
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestUDPListenerCloseEndsReadBackoff: Close ends Serve while its loop
// waits out a failed read's backoff, instead of after it (the server's stop
// waits for Serve; the backoff reaches 1 s). The backoff is an hour here,
// so a Serve that sleeps through it cannot pass.
func TestUDPListenerCloseEndsReadBackoff(t *testing.T) {
	realRecv, realMin, realMax := listenerRecv, readBackoffMin, readBackoffMax
	t.Cleanup(func() { listenerRecv, readBackoffMin, readBackoffMax = realRecv, realMin, realMax })
	readBackoffMin, readBackoffMax = time.Hour, time.Hour
	failed := make(chan struct{})
	var once sync.Once
	listenerRecv = func(fd uintptr, b *dgramBatch) error {
		once.Do(func() { close(failed) })
		return syscall.ENOBUFS
	}

	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &UDPServer{Pool: pool(t, udpEcho(t, same)), IdleTimeout: time.Minute}
	done := make(chan error, 1)
	go func() { done <- s.Serve(pc) }()
	c := udpClient(t, pc.LocalAddr().String())
	// The poller calls the read only when the socket is readable.
	if _, err := c.Write([]byte("wake")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-failed:
	case <-time.After(10 * time.Second):
		s.Close()
		t.Fatal("no read within 10 s")
	}
	s.Close()
	select {
	case err := <-done:
		if err != ErrServerClosed {
			t.Fatalf("Serve = %v, want ErrServerClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve still in its read backoff 10 s after Close")
	}
}
