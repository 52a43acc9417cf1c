//go:build !race

package quic

import (
	"path/filepath"
	"testing"
)

// TestCollectorAllocs holds Collector to its promise: a reused Collector
// opens a known connection's Initials without allocating. (The race
// detector's instrumentation allocates, hence the build tag.)
func TestCollectorAllocs(t *testing.T) {
	dgrams := readHex(t, filepath.Join("testdata", "initials", multiPacketCapture))
	var c Collector
	run := func() {
		c.Reset()
		for _, d := range dgrams {
			if _, err := c.Add(d); err != nil {
				t.Fatal(err)
			}
		}
		if c.Hello() == nil {
			t.Fatal("no hello")
		}
	}
	run() // grows the buffers, derives the keys
	if n := testing.AllocsPerRun(100, run); n != 0 {
		t.Fatalf("%v allocations per two-datagram hello, want 0", n)
	}
}
