package quic

import (
	"testing"
	"time"
)

// TestResetBudget: resetBurst cancelled requests at once, resetRate a
// second after; one more closes the connection, once. (End to end:
// integration TestHostileH3RapidReset.)
func TestResetBudget(t *testing.T) {
	r := newConnResets(nil)
	now := time.Now()
	for i := range resetBurst {
		if r.take(now) {
			t.Fatalf("overdrawn at %d, within the burst of %d", i, resetBurst)
		}
	}
	now = now.Add(time.Second) // a second's refill
	for i := range resetRate - 1 {
		if r.take(now) {
			t.Fatalf("overdrawn at %d, within the refill of %d", i, resetRate)
		}
	}
	now = now.Add(time.Hour) // never more than the burst
	closes := 0
	for range resetBurst + 5 {
		if r.take(now) {
			closes++
		}
	}
	if closes != 1 {
		t.Errorf("%d closes past the burst, want 1", closes)
	}
}
