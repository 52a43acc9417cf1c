//go:build linux

package main

import (
	"fmt"
	"io"
	"strings"
)

// The UDP scenarios' loader and echo backend both run in the harness, for
// every target, direct included. On this shared 2-core machine the UDP
// runs are CPU-bound, so a target's kpkt/s "vs direct" mostly measures how
// much CPU the other processes on the machine left that round (direct
// ranged 61–165 kpkt/s within one run). The CPU the whole relay path costs
// per round trip, the target's plus the harness's, does not depend on that:
// on a machine the run had to itself, throughput vs direct would tend to
// direct's figure divided by the target's.

// machinePerUnit is, per round, the target's and the harness's CPU per
// unit of work times the scenario's cpuScale (for direct, the harness's
// alone). Zero when the harness's CPU was not measured.
func machinePerUnit(sc *scenario, rounds []sample) spread {
	var v []float64
	for _, s := range rounds {
		if s.LoaderCPU > 0 && s.Work > 0 {
			v = append(v, (s.CPU+s.LoaderCPU)/s.Work*sc.cpuScale)
		}
	}
	return spreadOf(v)
}

// machineColumn: the report shows the target+harness CPU per unit where
// the harness holds the scenario's whole load path (loader and backend).
func machineColumn(sc *scenario) bool { return sc.kind == kindUDP }

// writeCPUBound writes each target's CPU-bound ratio to direct (see
// above), when direct was measured.
func writeCPUBound(w io.Writer, sr *scenarioResult, ok []*targetResult) {
	var direct *targetResult
	for _, tr := range ok {
		if tr.Target == directName {
			direct = tr
		}
	}
	if direct == nil || direct.MachinePerUnit.Median == 0 {
		return
	}
	var parts []string
	for _, tr := range ok {
		if tr != direct && tr.MachinePerUnit.Median > 0 {
			parts = append(parts, fmt.Sprintf("%s %.2f×", tr.Target, direct.MachinePerUnit.Median/tr.MachinePerUnit.Median))
		}
	}
	if len(parts) == 0 {
		return
	}
	fmt.Fprintf(w, "\nCPU-bound vs direct (direct's %s of target and harness ÷ the target's; the throughput ratio on a machine the run had to itself): %s.\n",
		sr.CPUUnit, strings.Join(parts, ", "))
}
