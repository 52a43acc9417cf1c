//go:build !linux

package l7

// peekIdle cannot check a connection without blocking here; a connection
// the backend closed fails on use and the request is retried when it may
// be (h1Transport.RoundTrip).
func peekIdle(*h1Conn) bool { return true }

// flushAndWait writes the request; the response's first read waits for it.
func flushAndWait(c *h1Conn) error { return c.bw.Flush() }
