package quic

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/quic-go/qpack"
	quicgo "github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/quic-go/quicvarint"
	"go.uber.org/goleak"
)

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestResetBudget: resetBurst cancelled requests at once, resetRate a
// second after; one more closes the connection, once. (End to end:
// integration TestHostileH3RapidReset.)
func TestResetBudget(t *testing.T) {
	r := newConnResets(nil)
	now := time.Now()
	for i := range resetBurst {
		if r.take(now) {
			t.Fatalf("overdrawn at %d, within the burst of %d", i, resetBurst)
		}
	}
	now = now.Add(time.Second) // a second's refill
	for i := range resetRate - 1 {
		if r.take(now) {
			t.Fatalf("overdrawn at %d, within the refill of %d", i, resetRate)
		}
	}
	now = now.Add(time.Hour) // never more than the burst
	closes := 0
	for range resetBurst + 5 {
		if r.take(now) {
			closes++
		}
	}
	if closes != 1 {
		t.Errorf("%d closes past the burst, want 1", closes)
	}
}

// TestRapidResetCloses, over real QUIC connections: a client that
// cancels a few requests keeps its connection and moves nothing; one that
// sends requests and stops each at once is closed with
// H3_EXCESSIVE_LOAD, counted once per connection in ResetCloses and
// logged at warn with its address and the entrypoint.
func TestRapidResetCloses(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	closes := prometheus.NewCounter(prometheus.CounterOpts{Name: "closes"})
	var logs lockedBuffer
	ts := startServer(t, ServerOptions{Entrypoint: "web", RetryThreshold: 1000, ResetCloses: closes,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		// Each request is served until its client cancels it (or a while).
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/ok" {
				return
			}
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		})})

	t.Run("a few cancelled requests", func(t *testing.T) {
		tr := ts.client()
		defer tr.Close()
		get(t, tr, "https://"+ts.addr+"/ok") // the connection is up
		for range 5 {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+ts.addr+"/slow", nil)
			if _, err := tr.RoundTrip(req); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("cancelled request: %v, want its deadline", err)
			}
			cancel()
		}
		get(t, tr, "https://"+ts.addr+"/ok")
		if n := testutil.ToFloat64(closes); n != 0 {
			t.Fatalf("counter %v after 5 cancelled requests, want 0", n)
		}
	})

	for i := range 2 {
		t.Run(fmt.Sprintf("a flood of them, connection %d", i+1), func(t *testing.T) {
			h3ResetFlood(t, ts)
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
	if remote, _ := rec["remote"].(string); rec["level"] != "WARN" || rec["entrypoint"] != "web" || !strings.HasPrefix(remote, "127.0.0.1:") {
		t.Errorf("log line %v, want level WARN, entrypoint web and the client's address as remote; log:\n%s", rec, logs.String())
	}
}

// h3ResetFlood sends whole requests on a new connection to ts and stops
// the answer to each at once (STOP_SENDING), until the server closes the
// connection, which must be with H3_EXCESSIVE_LOAD.
func h3ResetFlood(t *testing.T, ts *testServer) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := quicgo.DialAddr(ctx, ts.addr, &tls.Config{RootCAs: ts.pool, ServerName: "t.test", NextProtos: []string{http3.NextProtoH3}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	var fields bytes.Buffer
	enc := qpack.NewEncoder(&fields)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "t.test"}, {":path", "/slow"}} {
		_ = enc.WriteField(qpack.HeaderField{Name: f[0], Value: f[1]})
	}
	frame := quicvarint.Append(nil, 0x01) // HEADERS (RFC 9114 §7.2.2)
	frame = quicvarint.Append(frame, uint64(fields.Len()))
	frame = append(frame, fields.Bytes()...)
	for sent := 0; ; sent++ {
		str, err := conn.OpenStreamSync(ctx)
		if err == nil {
			_, err = str.Write(frame)
		}
		if err != nil {
			var ae *quicgo.ApplicationError
			if !errors.As(err, &ae) || ae.ErrorCode != quicgo.ApplicationErrorCode(http3.ErrCodeExcessiveLoad) {
				t.Fatalf("after %d reset requests: %v, want the connection closed with H3_EXCESSIVE_LOAD", sent, err)
			}
			return
		}
		_ = str.Close()
		str.CancelRead(quicgo.StreamErrorCode(http3.ErrCodeRequestCanceled))
	}
}
