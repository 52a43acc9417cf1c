//go:build linux

package integration

// An HTTP/2 request body that stops coming.

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestHostileH2BodyStall: streams whose request body stops after a byte,
// on a connection the client keeps busy with PINGs (so no connection
// timer fires), end at timeouts.idle (1s here) with 408, as HTTP/1's
// stalled body does, and the backend requests waiting for those bodies
// end with them. Before l7/h2stall.go timed body reads they were held for
// as long as the client wished, each with a backend connection.
func TestHostileH2BodyStall(t *testing.T) {
	var started, ended atomic.Int64
	be := startProtoHTTPBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		defer ended.Add(1)
		buf := make([]byte, 1024)
		for {
			if _, err := r.Body.Read(buf); err != nil {
				return
			}
		}
	}))
	pp := &protoProxy{proc: hostileProxy(t, `backend "http://`+be+`" {}`)}
	pp.addr = pp.proc.addr("web")
	a := dialH2Attacker(t, pp.addr)
	const streams = 10
	for id := uint32(1); id < 2*streams; id += 2 {
		a.hb.Reset()
		for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", "body.test"}, {":path", "/up"}, {"content-length", "1000"}} {
			_ = a.he.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		if a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: a.hb.Bytes(), EndHeaders: true}) != nil ||
			a.fr.WriteData(id, false, []byte("x")) != nil {
			t.Fatal("write failed")
		}
	}
	if a.bw.Flush() != nil {
		t.Fatal("flush failed")
	}
	answers := make(chan string, streams)
	go func() {
		// The first answer of each stream: a 408's stream is then reset
		// (NO_ERROR), its body unread.
		seen := map[uint32]bool{}
		for {
			f, err := a.fr.ReadFrame()
			if err != nil {
				close(answers)
				return
			}
			id, answer := f.Header().StreamID, ""
			switch f := f.(type) {
			case *http2.MetaHeadersFrame:
				answer = f.PseudoValue("status")
			case *http2.RSTStreamFrame:
				answer = "reset " + f.ErrCode.String()
			}
			if answer != "" && !seen[id] {
				seen[id] = true
				answers <- answer
			}
		}
	}()
	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var got []string
	for len(got) < streams && time.Since(start) < 10*time.Second {
		select {
		case s, ok := <-answers:
			if !ok {
				t.Fatalf("connection ended after answers %v", got)
			}
			got = append(got, s)
		case <-tick.C:
			_ = a.fr.WritePing(false, [8]byte{'b', 'u', 's', 'y'})
			_ = a.bw.Flush()
		}
	}
	took := time.Since(start)
	t.Logf("answers %v after %v; backend %d started, %d ended", got, took.Round(time.Millisecond), started.Load(), ended.Load())
	if len(got) < streams {
		t.Fatalf("%d of %d streams with a stalled body answered in %v", len(got), streams, took)
	}
	if took > 6*time.Second {
		t.Errorf("stalled bodies ended after %v, want about 1s", took)
	}
	for _, s := range got {
		if s != "408" && s[0] != 'r' {
			t.Errorf("answer %q to a stalled body, want 408 or a reset", s)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); ended.Load() < started.Load() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if s, e := started.Load(), ended.Load(); e < s {
		t.Errorf("%d of %d backend requests still waiting for a body that was given up on", s-e, s)
	}

	// A stream whose client has sent a byte of its body and then only
	// listens while the answer streams for 2.4s, longer than the timeout:
	// a gRPC subscription. Something moves on it, so it stays.
	t.Run("client listening", func(t *testing.T) {
		sub := startHTTPBackend(t, "sub")
		sub.setHandler(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			for range 12 {
				_, _ = io.WriteString(w, "tick")
				http.NewResponseController(w).Flush()
				time.Sleep(200 * time.Millisecond)
			}
		})
		sp := &protoProxy{proc: hostileProxy(t, `backend "h2c://`+sub.addr+`" {}`)}
		a := dialH2Attacker(t, sp.proc.addr("web"))
		a.hb.Reset()
		for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", "sub.test"}, {":path", "/sub"}} {
			_ = a.he.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		if a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: a.hb.Bytes(), EndHeaders: true}) != nil ||
			a.fr.WriteData(1, false, []byte("x")) != nil || a.bw.Flush() != nil {
			t.Fatal("write failed")
		}
		ticks := 0
		for {
			f, err := a.fr.ReadFrame()
			if err != nil {
				t.Fatalf("after %d ticks: %v", ticks, err)
			}
			switch f := f.(type) {
			case *http2.MetaHeadersFrame:
				if st := f.PseudoValue("status"); st != "" && st != "200" {
					t.Fatalf("status %s for a listening client, want 200", st)
				}
				if f.StreamEnded() {
					return
				}
			case *http2.DataFrame:
				ticks += strings.Count(string(f.Data()), "tick")
				if f.StreamEnded() {
					if ticks != 12 {
						t.Errorf("%d ticks, want 12", ticks)
					}
					return
				}
			case *http2.RSTStreamFrame:
				t.Fatalf("a listening client's stream reset (%v) after %d ticks", f.ErrCode, ticks)
			}
		}
	})

	// A body that comes slowly but steadily, a byte every 300ms for
	// 2.4s, longer than the timeout altogether, is whole at the backend.
	t.Run("slow but steady", func(t *testing.T) {
		a := dialH2Attacker(t, pp.addr)
		a.hb.Reset()
		for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", "body.test"}, {":path", "/up"}, {"content-length", "8"}} {
			_ = a.he.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		if a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: a.hb.Bytes(), EndHeaders: true}) != nil || a.bw.Flush() != nil {
			t.Fatal("write failed")
		}
		for i := range 8 {
			time.Sleep(300 * time.Millisecond)
			if a.fr.WriteData(1, i == 7, []byte("x")) != nil || a.bw.Flush() != nil {
				t.Fatal("write failed")
			}
		}
		for {
			f, err := a.fr.ReadFrame()
			if err != nil {
				t.Fatalf("no answer to a steady body: %v", err)
			}
			switch f := f.(type) {
			case *http2.MetaHeadersFrame:
				if st := f.PseudoValue("status"); st != "200" {
					t.Fatalf("status %s for a steady body, want 200", st)
				}
				return
			case *http2.RSTStreamFrame:
				t.Fatalf("steady body's stream reset: %v", f.ErrCode)
			}
		}
	})
}
