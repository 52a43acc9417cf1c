package server

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// The collector's pacing for a proxy. A proxy's live heap is small (a few
// MB: routes, pools, per-connection state) while it allocates at a steady
// rate proportional to its traffic (about 2 KB per proxied request). With
// Go's default GOGC=100 and its 4 MB minimum goal, that is a collection
// every few MB allocated: at 35,000 requests/s about 20 a second, 5-7 % of
// the CPU in marking, assists and sweeping. Keeping the goal at least
// gcHeadroom above the live heap makes collections several times rarer for
// a bounded cost in memory (nginx, HAProxy and Caddy users expect a proxy
// to hold tens of MB, not hundreds). Once the live heap is large (many
// connections, a big configuration) the headroom is smaller than GOGC's
// own and the tuner leaves GOGC at 100.
//
// A GOGC set in the environment is the operator's choice and turns the
// tuner off; GOMEMLIMIT is honoured by the runtime either way.
const gcHeadroom = 16 << 20

// gcMinGoal is the runtime's minimum heap goal at GOGC=100
// (defaultHeapMinimum); it scales with GOGC like the goal itself.
const gcMinGoal = 4 << 20

// gcTuner re-derives GOGC after every collection from the live heap it
// left, so that the next goal is about max(2×live, live+gcHeadroom).
type gcTuner struct {
	mu      sync.Mutex
	running bool
	gen     uint64 // bumped by stop; a sentinel of an older gen does nothing
	relax   int    // relaxGC holders (a reload compiling)
	percent int    // as last set
	samples []metrics.Sample
}

var tuner gcTuner

// gcBasePercent is GOGC without the tuner, and the least it sets.
const gcBasePercent = 100

// StartGCTuner starts pacing the collector for a proxy (see gcHeadroom)
// unless GOGC is set in the environment. It returns a func that stops the
// tuner and puts GOGC back; it is for the process's main, once.
func StartGCTuner() (stop func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	return tuner.start()
}

func (t *gcTuner) start() (stop func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.running {
		return func() {}
	}
	t.running = true
	t.gen++
	debug.SetGCPercent(gcBasePercent) // returns the previous value, not what is now in force
	t.percent = gcBasePercent
	t.samples = []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/scan/stack:bytes"},
		{Name: "/gc/scan/globals:bytes"},
	}
	t.adjustLocked()
	t.arm(t.gen)
	return t.stop
}

func (t *gcTuner) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.running {
		return
	}
	t.running = false
	t.gen++
	t.set(gcBasePercent)
}

// gcSentinel is garbage the moment it is made; its cleanup runs after the
// next collection's sweep finds it, which is the tuner's per-cycle hook.
// It holds a pointer so it is never a tiny allocation, whose block a
// neighbour could keep alive.
type gcSentinel struct{ _ *gcSentinel }

func (t *gcTuner) arm(gen uint64) {
	s := new(gcSentinel)
	runtime.AddCleanup(s, t.afterGC, gen)
}

func (t *gcTuner) afterGC(gen uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.running || gen != t.gen {
		return
	}
	t.adjustLocked()
	t.arm(gen)
}

func (t *gcTuner) adjustLocked() {
	metrics.Read(t.samples)
	var v [3]uint64
	for i, s := range t.samples {
		if s.Value.Kind() == metrics.KindUint64 {
			v[i] = s.Value.Uint64()
		}
	}
	p := gcPercentFor(v[0], v[1]+v[2], gcBasePercent)
	if t.relax > 0 {
		p = max(p, reloadGCPercent)
	}
	t.set(p)
}

func (t *gcTuner) set(p int) {
	if p != t.percent {
		debug.SetGCPercent(p)
		t.percent = p
	}
}

// gcPercentFor is the GOGC that puts the next goal about gcHeadroom above
// live, never below base. The runtime's goal is live + (live+roots)×GOGC/100,
// but at least gcMinGoal×GOGC/100, so the headroom is divided by the larger
// of the two (which also bounds the result: at most 400).
func gcPercentFor(live, roots uint64, base int) int {
	scan := max(live+roots, gcMinGoal)
	return max(int(gcHeadroom*100/scan), base)
}

// relaxTuned is relaxGC with the tuner running: it holds GOGC at least at
// reloadGCPercent until the returned func. ok is false without the tuner.
func (t *gcTuner) relaxTuned() (restore func(), ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.running {
		return nil, false
	}
	t.relax++
	t.adjustLocked()
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.relax--
		if t.running {
			t.adjustLocked()
		}
	}, true
}
