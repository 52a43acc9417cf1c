package l7

import (
	"net/http"
	"testing"
	"time"
)

// The cached Date value expires by the monotonic clock: across a change
// of the wall clock's second it must never be older than the second a
// call began in (nor, read between two clock readings, anything but one
// of theirs).
func TestHTTPDateNeverStale(t *testing.T) {
	for round := range 3 {
		// Wake just before the next second and spin across it.
		now := time.Now()
		next := now.Truncate(time.Second).Add(time.Second)
		time.Sleep(time.Until(next) - 2*time.Millisecond)
		end := next.Add(3 * time.Millisecond)
		first, crossed := "", false
		for {
			before := time.Now()
			got := httpDate()
			after := time.Now()
			b, a := before.UTC().Format(http.TimeFormat), after.UTC().Format(http.TimeFormat)
			if got != b && got != a {
				t.Fatalf("round %d: Date %q between %q and %q", round, got, b, a)
			}
			if first == "" {
				first = b
			}
			crossed = crossed || a != first
			if after.After(end) {
				break
			}
		}
		if !crossed {
			// A loop preempted for the whole window sees no change.
			t.Logf("round %d did not see the second change", round)
		}
	}
}
