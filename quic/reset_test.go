package quic

import (
	"testing"
	"time"
)

// TestResetBudget: resetBurst cancelled requests at once, resetRate a
// second after; one more closes the connection, once. (End to end:
// integration TestHostileH3RapidReset.)
func TestResetBudget(t *testing.T) {
	r := &connResets{tokens: resetBurst, last: time.Now()}
	for i := range resetBurst {
		if r.take() {
			t.Fatalf("overdrawn at %d, within the burst of %d", i, resetBurst)
		}
	}
	r.last = r.last.Add(-time.Second) // a second's refill
	for i := range resetRate - 1 {
		if r.take() {
			t.Fatalf("overdrawn at %d, within the refill of %d", i, resetRate)
		}
	}
	r.last = r.last.Add(-time.Hour) // never more than the burst
	closes := 0
	for range resetBurst + 5 {
		if r.take() {
			closes++
		}
	}
	if closes != 1 {
		t.Errorf("%d closes past the burst, want 1", closes)
	}
}
