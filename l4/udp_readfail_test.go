package l4

import (
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestUDPListenerReadFailsBacksOff: a listener read that keeps failing is
// retried with a growing delay, not in a tight loop (on main it spun: tens
// of thousands of failed reads, each logged, in the same 300 ms), and the
// relay works again once reads succeed.
func TestUDPListenerReadFailsBacksOff(t *testing.T) {
	var failing atomic.Bool
	var failed atomic.Int64
	failing.Store(true)
	real := listenerRecv
	listenerRecv = func(fd uintptr, b *dgramBatch) error {
		if failing.Load() {
			failed.Add(1)
			return syscall.ENOBUFS
		}
		return real(fd, b)
	}
	// Restored after the server's own cleanup (cleanups run last first).
	t.Cleanup(func() { listenerRecv = real })

	be := udpEcho(t, same)
	s := &UDPServer{Pool: pool(t, be), IdleTimeout: time.Minute}
	addr := startUDP(t, s)
	c := udpClient(t, addr)
	// The poller calls the read only when the socket is readable.
	if _, err := c.Write([]byte("wake")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	// 5+10+20+40+80+160 ms: at most 7 reads, however slow the machine.
	if n := failed.Load(); n < 1 || n > 7 {
		t.Fatalf("%d failed reads in 300 ms, want 1 to 7 (a backing-off retry)", n)
	}
	failing.Store(false)
	if got := string(roundTrip(t, c, []byte("back"))); got != "wake" && got != "back" {
		t.Fatalf("echo %q after the reads recovered", got)
	}
}
