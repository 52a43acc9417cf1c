//go:build linux

package main

import (
	"strings"
	"testing"
)

// TestMachinePerUnit: the target's and the harness's CPU per unit add up,
// rounds without the harness's CPU are left out, and the CPU-bound ratio
// divides direct's figure by each target's.
func TestMachinePerUnit(t *testing.T) {
	sc := &scenario{kind: kindUDP, cpuScale: 1e6}
	for _, tc := range []struct {
		name   string
		rounds []sample
		want   spread
	}{
		{name: "target and harness", rounds: []sample{{Work: 1e5, CPU: 0.5, LoaderCPU: 1}}, want: spread{15, 15, 15}},
		{name: "direct: harness alone", rounds: []sample{{Work: 1e5, LoaderCPU: 1}, {Work: 2e5, LoaderCPU: 1}}, want: spread{7.5, 5, 10}},
		{name: "harness not measured", rounds: []sample{{Work: 1e5, CPU: 0.5}}, want: spread{}},
		{name: "no work", rounds: []sample{{CPU: 0.5, LoaderCPU: 1}}, want: spread{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := machinePerUnit(sc, tc.rounds); got != tc.want {
				t.Fatalf("machinePerUnit = %+v, want %+v", got, tc.want)
			}
		})
	}

	sr := &scenarioResult{CPUUnit: "CPU µs/pkt", sc: sc}
	direct := &targetResult{Target: directName, MachinePerUnit: spread{Median: 10}}
	pn := &targetResult{Target: "proxynow", MachinePerUnit: spread{Median: 16}}
	ng := &targetResult{Target: "nginx", MachinePerUnit: spread{Median: 25}}
	var w strings.Builder
	writeCPUBound(&w, sr, []*targetResult{pn, ng, direct})
	if got := w.String(); !strings.Contains(got, "proxynow 0.62×, nginx 0.40×") {
		t.Errorf("CPU-bound line = %q, want proxynow 0.62×, nginx 0.40×", got)
	}
	w.Reset()
	writeCPUBound(&w, sr, []*targetResult{pn, ng})
	if w.Len() != 0 {
		t.Errorf("without direct: %q, want nothing", w.String())
	}
}
