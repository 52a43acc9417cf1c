package l7

import (
	"io"
	"log"
	"net"
	"net/http"
	"testing"
	"time"
)

// closeCount is a net.Conn that counts its Close calls.
type closeCount struct {
	net.Conn
	closes int
}

func (c *closeCount) Close() error { c.closes++; return nil }

func (c *closeCount) RemoteAddr() net.Addr { return &net.TCPAddr{} }

// TestH2ResetBudget: a connection may have h2ResetBurst streams end
// cancelled at once and h2ResetRate a second after; one more closes it,
// once. (The end to end attack is integration TestHostileH2RapidReset.)
func TestH2ResetBudget(t *testing.T) {
	s := newH2Server(&http.Server{ErrorLog: log.New(io.Discard, "", 0)})
	t.Run("burst", func(t *testing.T) {
		c := &closeCount{}
		h := newH2ConnHandler(s, c)
		now := time.Now()
		for range h2ResetBurst {
			h.cancelledAt(now)
		}
		if c.closes != 0 {
			t.Fatalf("closed within the burst of %d", h2ResetBurst)
		}
		h.cancelledAt(now)
		h.cancelledAt(now)
		if c.closes != 1 {
			t.Fatalf("%d closes past the burst, want 1", c.closes)
		}
	})
	t.Run("refill", func(t *testing.T) {
		c := &closeCount{}
		h := newH2ConnHandler(s, c)
		now := time.Now()
		for range h2ResetBurst {
			h.cancelledAt(now)
		}
		// A second later the bucket holds h2ResetRate more.
		now = now.Add(time.Second)
		for range h2ResetRate - 1 {
			h.cancelledAt(now)
		}
		if c.closes != 0 {
			t.Fatalf("closed within the refill of %d", h2ResetRate)
		}
		now = now.Add(time.Hour) // never more than the burst
		for range h2ResetBurst + 1 {
			h.cancelledAt(now)
		}
		if c.closes != 1 {
			t.Fatalf("%d closes after an hour's refill and a burst and one, want 1", c.closes)
		}
	})
}
