package acme

import (
	"testing"
	"time"
)

// TestOrderLimiter: rate orders at once, then one more each
// interval/rate, never more than rate in store after a long pause.
func TestOrderLimiter(t *testing.T) {
	l := orderLimiter(3, time.Hour)
	t0 := time.Now()
	for i := range 3 {
		if !l.AllowN(t0, 1) {
			t.Fatalf("order %d of the first 3 refused", i+1)
		}
	}
	if l.AllowN(t0, 1) {
		t.Fatal("a 4th order at once allowed")
	}
	if l.AllowN(t0.Add(19*time.Minute), 1) {
		t.Fatal("an order allowed 19 min later (one refills every 20 min)")
	}
	if !l.AllowN(t0.Add(20*time.Minute), 1) {
		t.Fatal("no order allowed 20 min later")
	}
	later := t0.Add(24 * time.Hour)
	n := 0
	for l.AllowN(later, 1) {
		n++
	}
	if n != 3 {
		t.Fatalf("%d orders allowed after a day's pause, want 3 (the burst)", n)
	}
}
