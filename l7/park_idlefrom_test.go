package l7

import (
	"io"
	"testing"
	"time"
)

// TestGuardIdleFromOnlyWhileLazy: the clock reading noteIdleDeadline left
// (idleFrom) dates only the wait it announced. Once a deadline was set
// since (lazy cleared), a later wait reads the clock itself: it still
// waits parkAfter before parking, not at once from a reading long past.
func TestGuardIdleFromOnlyWhileLazy(t *testing.T) {
	const parkAfter = 300 * time.Millisecond
	g, _, client := lazyParkPair(t, parkAfter)
	serveHeads(t, g, client, 1) // ends with noteIdleDeadline: idleFrom set
	if err := g.SetReadDeadline(time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// The announced wait's reading grows older than parkAfter.
	time.Sleep(2 * parkAfter)
	start := time.Now()
	n, err := g.Read(make([]byte, 512))
	waited := time.Since(start)
	if n != 0 || err != io.EOF || !g.parked.Load() {
		t.Fatalf("Read = %d, %v (parked %v), want 0, EOF, parked", n, err, g.parked.Load())
	}
	if min := parkAfter - parkAfter/parkSlack; waited < min {
		t.Fatalf("parked after %v, want %v or more: the wait was dated from a stale reading", waited, min)
	}
}
