package l7

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestH2DisconnectIsNoRapidReset: a client that goes away with more
// streams in flight than the reset budget's burst cancels them all, but
// is no rapid reset: the counter stays at 0.
func TestH2DisconnectIsNoRapidReset(t *testing.T) {
	closes := prometheus.NewCounter(prometheus.CounterOpts{Name: "closes"})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	f := startH2Front(t, h, ServerOptions{ResetCloses: closes, MaxConcurrentStreams: 2 * h2ResetBurst})
	fr := dialH2(t, f.plain)
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, hf := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}, {":path", "/"}} {
		enc.WriteField(hpack.HeaderField{Name: hf[0], Value: hf[1]})
	}
	const n = h2ResetBurst + 50
	for i := range n {
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for handlersRunning() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d handlers running, want %d", handlersRunning(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.srv.Close()
	awaitNoHandlers(t)
	if v := testutil.ToFloat64(closes); v != 0 {
		t.Errorf("rapid-reset closes %v after a client went away, want 0", v)
	}
}
