//go:build linux

package main

import (
	"strings"
	"testing"
)

// TestOpenLoopRounds: the open-loop figure of a target is the round with
// the median p99, with the spreads over its rounds; the report shows them
// and the first target's median p99 over each other target's.
func TestOpenLoopRounds(t *testing.T) {
	round := func(p50, p99 float64, errs int64) sample {
		return sample{Work: 6000, Seconds: 1, Rate: 6000, P50ms: p50, P99ms: p99, Errors: errs}
	}
	pn := &targetResult{Target: "proxynow", Rounds: []sample{{Work: 1, Seconds: 1}},
		OpenLoops: []sample{round(0.4, 5, 0), round(0.3, 1, 1), round(0.5, 3, 0)}}
	ng := &targetResult{Target: "nginx", Rounds: []sample{{Work: 1, Seconds: 1}},
		OpenLoops: []sample{round(0.3, 2, 0), round(0.3, 2, 0), round(0.3, 2, 0)}}
	pn.summarizeOpenLoop()
	ng.summarizeOpenLoop()
	if pn.OpenLoop == nil || pn.OpenLoop.P99ms != 3 || pn.OpenLoop.P50ms != 0.5 {
		t.Fatalf("OpenLoop = %+v, want the round with the median p99 (3 ms)", pn.OpenLoop)
	}
	if pn.OpenP99 != (spread{3, 1, 5}) || pn.OpenP50 != (spread{0.4, 0.3, 0.5}) {
		t.Fatalf("spreads p50 %+v p99 %+v", pn.OpenP50, pn.OpenP99)
	}
	sr := &scenarioResult{Title: "t", Unit: "req/s", CPUUnit: "CPU µs/req", Targets: []*targetResult{pn, ng}, sc: &scenario{kind: kindHTTP}}
	var w strings.Builder
	sr.markdown(&w)
	out := w.String()
	for _, want := range []string{
		"over 3 rounds",
		"| proxynow | 6000 | 0.400 (0.300–0.500) | 3.000 (1.000–5.000) | 1 | — |",
		"| nginx | 6000 | 0.300 | 2.000 | 0 | 1.50× |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	var none targetResult
	none.summarizeOpenLoop()
	if none.OpenLoop != nil {
		t.Error("a target without open-loop rounds got a figure")
	}
}
