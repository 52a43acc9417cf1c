package server

import (
	"runtime/debug"
	"runtime/metrics"
	"testing"
)

// TestGCTunerStartOverOtherGOGC: a GOGC other than 100 in force when the
// tuner starts (a reload's relaxGC before it, an earlier SetGCPercent) does
// not make the tuner's record of what it set wrong: the GOGC it computes
// for the live heap is in force after start.
func TestGCTunerStartOverOtherGOGC(t *testing.T) {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
	metrics.Read(s)
	want := gcPercentFor(s[0].Value.Uint64(), s[1].Value.Uint64()+s[2].Value.Uint64(), 100)
	if want == 100 {
		t.Skip("the test binary's live heap is too large for the tuner to raise GOGC")
	}
	// The value the tuner is about to set is already in force.
	defer debug.SetGCPercent(debug.SetGCPercent(want))
	stop := tuner.start()
	defer stop()
	tuner.mu.Lock()
	set := tuner.percent
	got := gogc()
	tuner.mu.Unlock()
	if got != set {
		t.Fatalf("GOGC after start = %d, but the tuner believes it set %d (and so never sets it)", got, set)
	}
}
