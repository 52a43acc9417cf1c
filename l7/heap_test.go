package l7

import (
	"runtime"
	"time"
)

// liveHeap is the heap in use after two collections.
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// heapGrowthWithin reports whether the live heap comes to at most limit
// bytes above base within wait (0: looked at once), polling while what
// still holds memory ends on its own (a server's side of a closed
// connection); grown is the growth it saw last.
func heapGrowthWithin(base, limit int64, wait time.Duration) (grown int64, ok bool) {
	deadline := time.Now().Add(wait)
	for {
		if grown = liveHeap() - base; grown <= limit {
			return grown, true
		}
		if time.Now().After(deadline) {
			return grown, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
