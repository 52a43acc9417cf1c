package server

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	const mb = 1 << 20
	for _, tt := range []struct {
		live, roots uint64
		base, want  int
	}{
		{0, 0, 100, 400},              // goal 16 MiB: the runtime's minimum, scaled
		{2 * mb, 100 << 10, 100, 400}, // small live heap: the minimum rules
		{8 * mb, 0, 100, 200},         // goal 8 + 8×2 = 24 MiB = live + 16
		{6 * mb, 2 * mb, 100, 200},    // roots count like the heap
		{16 * mb, 0, 100, 100},        // the headroom equals GOGC's own
		{64 * mb, 0, 100, 100},        // never below base
		{64 * mb, 0, 300, 300},
	} {
		if got := gcPercentFor(tt.live, tt.roots, tt.base); got != tt.want {
			t.Errorf("gcPercentFor(%d, %d, %d) = %d, want %d", tt.live, tt.roots, tt.base, got, tt.want)
		}
	}
}

// gogc is the runtime's current GOGC, read without changing it.
func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// waitGOGC runs collections until GOGC is want (the tuner adjusts after a
// cycle's sweep, on the cleanup goroutine).
func waitGOGC(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for gogc() != want {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC = %d, want %d", gogc(), want)
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}

// TestGCTunerFollowsLiveHeap: with a small live heap the tuner raises GOGC
// so that the goal is gcHeadroom above it; when the live heap grows past
// the headroom it goes back to 100; a reload holds it at least at
// reloadGCPercent; stop puts 100 back and later cycles change nothing.
func TestGCTunerFollowsLiveHeap(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	stop := tuner.start()
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	runtime.GC()
	live := func() uint64 {
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
		metrics.Read(s)
		return s[0].Value.Uint64() + s[1].Value.Uint64() + s[2].Value.Uint64()
	}
	if l := live(); l > gcHeadroom/2 {
		t.Skipf("the test binary's live heap is %d bytes; the tuner's raise cannot be seen", l)
	}
	waitGOGC(t, gcPercentFor(0, live(), 100))
	if gogc() <= 100 {
		t.Fatalf("GOGC = %d with a small live heap, want > 100", gogc())
	}

	// A live heap larger than the headroom: GOGC's own goal is larger.
	big := make([][]byte, 0, 64)
	for range 40 {
		big = append(big, make([]byte, 1<<20))
	}
	waitGOGC(t, 100)

	restore := relaxGC()
	if got := gogc(); got != reloadGCPercent {
		t.Fatalf("GOGC during a reload = %d, want %d", got, reloadGCPercent)
	}
	restore()
	if got := gogc(); got != 100 {
		t.Fatalf("GOGC after a reload = %d, want 100", got)
	}
	runtime.KeepAlive(big)
	big = nil

	waitGOGC(t, gcPercentFor(0, live(), 100))
	stop()
	stopped = true
	if got := gogc(); got != 100 {
		t.Fatalf("GOGC after stop = %d, want 100", got)
	}
	for range 3 {
		runtime.GC()
	}
	time.Sleep(10 * time.Millisecond)
	if got := gogc(); got != 100 {
		t.Fatalf("GOGC changed after stop: %d", got)
	}
}
