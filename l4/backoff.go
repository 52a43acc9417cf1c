package l4

import "time"

// The accept and read loops' backoff after a failure that may last (out of
// descriptors, out of buffers): not spinning a core or flooding the log,
// and not holding up a stop either.

// retryDelay is the delay after d: doubled, within [lo, hi].
func retryDelay(d, lo, hi time.Duration) time.Duration { return min(max(2*d, lo), hi) }

// waitOrQuit waits d; false when quit closed first (Shutdown or Close: a
// server's stop and a reload wait for Serve to return).
func waitOrQuit(d time.Duration, quit <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-quit:
		return false
	}
}
