package l7

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// closeCount is a net.Conn that counts its Close calls.
type closeCount struct {
	net.Conn
	closes int
}

func (c *closeCount) Close() error { c.closes++; return nil }

// Write takes the GOAWAY that comes before the close.
func (c *closeCount) Write(p []byte) (int, error) { return len(p), nil }

func (c *closeCount) RemoteAddr() net.Addr { return &net.TCPAddr{} }

// TestH2ResetBudget: a connection may have h2ResetBurst streams end
// cancelled at once and h2ResetRate a second after; one more closes it,
// once, and counts it once. (The end to end attack is
// TestH2RapidResetCloses here and integration TestHostileH2RapidReset.)
func TestH2ResetBudget(t *testing.T) {
	closes := prometheus.NewCounter(prometheus.CounterOpts{Name: "closes"})
	s := newH2Server(&http.Server{ErrorLog: log.New(io.Discard, "", 0)}, nil, closes)
	t.Run("burst", func(t *testing.T) {
		before := testutil.ToFloat64(closes)
		c := &closeCount{}
		h := newH2Conn(s, c, c)
		now := time.Now()
		for range h2ResetBurst {
			h.cancelledAt(now)
		}
		if c.closes != 0 || testutil.ToFloat64(closes) != before {
			t.Fatalf("closed within the burst of %d", h2ResetBurst)
		}
		h.cancelledAt(now)
		h.cancelledAt(now)
		if c.closes != 1 {
			t.Fatalf("%d closes past the burst, want 1", c.closes)
		}
		if n := testutil.ToFloat64(closes) - before; n != 1 {
			t.Fatalf("counter moved by %v past the burst, want 1", n)
		}
	})
	t.Run("refill", func(t *testing.T) {
		before := testutil.ToFloat64(closes)
		c := &closeCount{}
		h := newH2Conn(s, c, c)
		now := time.Now()
		for range h2ResetBurst {
			h.cancelledAt(now)
		}
		// A second later the bucket holds h2ResetRate more.
		now = now.Add(time.Second)
		for range h2ResetRate - 1 {
			h.cancelledAt(now)
		}
		if c.closes != 0 || testutil.ToFloat64(closes) != before {
			t.Fatalf("closed within the refill of %d", h2ResetRate)
		}
		now = now.Add(time.Hour) // never more than the burst
		for range h2ResetBurst + 1 {
			h.cancelledAt(now)
		}
		if c.closes != 1 {
			t.Fatalf("%d closes after an hour's refill and a burst and one, want 1", c.closes)
		}
		if n := testutil.ToFloat64(closes) - before; n != 1 {
			t.Fatalf("counter moved by %v, want 1", n)
		}
	})
}

// TestH2RapidResetCloses, over real connections to NewServer: a client
// that cancels a few streams keeps its connection and moves nothing; one
// that cancels streams as fast as it can write them is closed, counted
// once in Metrics.RapidResetCloses (entrypoint, HTTP/2) and logged at
// warn with its address and the entrypoint.
func TestH2RapidResetCloses(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	closes := m.RapidResetCloses("web", "HTTP/2")
	var logs lockedBuffer
	// Each stream is served until its client cancels it (or a while).
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ok" {
			return
		}
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	f := startH2Front(t, h, ServerOptions{Entrypoint: "web", ResetCloses: closes,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})

	t.Run("a few cancelled streams", func(t *testing.T) {
		tr := h2Client(false)
		defer tr.CloseIdleConnections()
		cl := &http.Client{Transport: tr}
		for range 5 {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			req, _ := http.NewRequestWithContext(ctx, "GET", f.url(false, "/slow"), nil)
			if _, err := cl.Do(req); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("cancelled request: %v, want its deadline", err)
			}
			cancel()
		}
		resp, err := cl.Get(f.url(false, "/ok"))
		if err != nil {
			t.Fatalf("after 5 cancelled streams: %v", err)
		}
		resp.Body.Close()
		if n := testutil.ToFloat64(closes); n != 0 {
			t.Fatalf("counter %v after 5 cancelled streams, want 0", n)
		}
	})

	for i := range 2 {
		t.Run(fmt.Sprintf("a flood of them, connection %d", i+1), func(t *testing.T) {
			h2ResetFlood(t, f.plain)
			if n := testutil.ToFloat64(closes); n != float64(i+1) {
				t.Fatalf("counter %v after %d connections closed for rapid reset, want %d", n, i+1, i+1)
			}
		})
	}
	var rec map[string]any
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, "rapid reset") {
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatal(err)
			}
		}
	}
	if rec == nil {
		t.Fatalf("no rapid reset log line in:\n%s", logs.String())
	}
	if remote, _ := rec["remote"].(string); rec["level"] != "WARN" || rec["entrypoint"] != "web" || !strings.HasPrefix(remote, "127.0.0.1:") {
		t.Errorf("log line %v, want level WARN, entrypoint web and the client's address as remote", rec)
	}
}

// h2ResetFlood opens streams on a new connection to addr and resets each
// at once, until the server closes the connection.
func h2ResetFlood(t *testing.T, addr string) {
	fr := dialH2(t, addr)
	var hb strings.Builder
	he := hpack.NewEncoder(&hb)
	for _, hf := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "t"}, {":path", "/slow"}} {
		he.WriteField(hpack.HeaderField{Name: hf[0], Value: hf[1]})
	}
	block := []byte(hb.String())
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		for {
			if _, err := fr.ReadFrame(); err != nil {
				return
			}
		}
	}()
	sent := 0
	for id := uint32(1); sent < 4*h2ResetBurst; id += 2 {
		if fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true}) != nil ||
			fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
			break
		}
		sent++
	}
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatalf("connection still open 10s after %d streams reset at once", sent)
	}
}
