//go:build linux

package integration

// HTTP/2 floods that cost the attacker little and could cost the proxy
// memory: CONTINUATION frames without end (CVE-2024-27316's family),
// SETTINGS and PING frames whose acknowledgements are never read.

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2FloodLimit is how much the proxy's RSS may grow under one flooding
// connection: x/net's frame buffers, a few queued frames and garbage not
// yet collected, not the flood.
const h2FloodLimit = 48 << 20

// floodResult is what became of one flooding connection.
type floodResult struct {
	sent int           // frames written
	code int64         // GOAWAY error code read, -1 for none
	took time.Duration // until the proxy let go of the connection
}

// floodFor is how long a client that reads nothing floods: an active
// client may keep a connection, whatever it sends; what is checked is
// that the proxy lets go once it stops.
const floodFor = 3 * time.Second

// floodProxy is a proxy with one-second timeouts answering every request
// itself.
func floodProxy(t *testing.T) *protoProxy {
	t.Helper()
	pp := &protoProxy{proc: hostileProxy(t, `respond {
    status = 200
    body   = "ok"
  }`)}
	pp.addr = pp.proc.addr("web")
	return pp
}

// flood starts a proxy, dials it and writes frames with write until that fails, n
// were written or the proxy let go of the connection, with the proxy's
// RSS sampled all along. With read the client reads, the end is its read
// failing, and the proxy must let go within releaseWithin of the start.
// Without, it reads nothing and floods for floodFor at most; the end is
// the proxy's socket gone from its descriptor table (a peer that neither
// reads nor gets its data read may never see the close itself: zero
// windows both ways leave the proxy's FIN queued in the kernel, which
// owns it now), within releaseWithin of the flood's end.
func flood(t *testing.T, n int, read bool, releaseWithin time.Duration, write func(a *h2Attacker, i int) error) floodResult {
	t.Helper()
	pp := floodProxy(t) // its own: no connection of another test ending meanwhile
	pid := pp.proc.cmd.Process.Pid
	before, err := rssBytes(pid)
	if err != nil {
		t.Fatal(err)
	}
	fds := procFDCount(t, pid)
	rss := startRSSSampler(pid)
	a := dialH2Attacker(t, pp.addr)
	res := floodResult{code: -1}
	start := time.Now()
	stop := start.Add(10 * time.Second) // the writer's end at the latest
	var gone <-chan int64
	if read {
		gone = a.readUntilGone()
	} else {
		stop = start.Add(floodFor)
		if tc, ok := a.c.(*net.TCPConn); ok {
			// A small window: the proxy's acknowledgements back up
			// sooner, however slowly a loaded machine runs the loop.
			_ = tc.SetReadBuffer(16 << 10)
		}
		released := make(chan int64, 1)
		gone = released
		go func() {
			waitFDsBack(t, pid, fds, stop.Add(10*time.Second))
			released <- -1
			a.c.Close() // ends the writer below
		}()
	}
	_ = a.c.SetWriteDeadline(stop)
	for res.sent < n && time.Now().Before(stop) && write(a, res.sent) == nil {
		res.sent++
		// 64 frames a write: the flood runs at the same pace on a slow
		// machine, under the race detector too.
		if res.sent%64 == 0 && a.bw.Flush() != nil {
			break
		}
	}
	from := start
	if !read {
		from = time.Now() // the flood's end
	}
	select {
	case res.code = <-gone:
	case <-time.After(time.Until(from.Add(10 * time.Second))):
		t.Fatalf("sent %d frames of %d; the proxy still held the connection %v later", res.sent, n, time.Since(from).Round(time.Millisecond))
	}
	res.took = time.Since(from)
	if res.took > releaseWithin {
		t.Errorf("sent %d frames of %d; the proxy let go of the connection only %v later, want within %v",
			res.sent, n, res.took.Round(time.Millisecond), releaseWithin)
	}
	if peak := rss.finish(); peak-before > h2FloodLimit {
		t.Errorf("proxy RSS grew from %d MiB to %d MiB under one flooding connection", before>>20, peak>>20)
	} else {
		t.Logf("sent %d frames of %d, GOAWAY code %d, released after %v, RSS %d -> %d MiB",
			res.sent, n, res.code, res.took.Round(time.Millisecond), before>>20, peak>>20)
	}
	return res
}

func TestHostileH2Floods(t *testing.T) {
	// A header block that never ends: each CONTINUATION carries 15 KB of
	// well-formed fields, so a server that decodes and keeps them grows
	// without bound. x/net stops at its header list limit (the server's
	// MaxHeaderBytes) and closes the connection with PROTOCOL_ERROR.
	t.Run("continuation", func(t *testing.T) {
		var fields bytes.Buffer
		enc := hpack.NewEncoder(&fields)
		for fields.Len() < 15<<10 {
			_ = enc.WriteField(hpack.HeaderField{Name: "x-flood", Value: strings.Repeat("a", 1000), Sensitive: true})
		}
		frag := fields.Bytes()
		const frames = 8192 // 120 MB if all were taken
		res := flood(t, frames, true, 10*time.Second, func(a *h2Attacker, i int) error {
			if i == 0 {
				return a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: a.headerBlock("flood.test", "/"), EndStream: true})
			}
			return a.fr.WriteContinuation(1, false, frag)
		})
		if res.sent == frames {
			t.Errorf("all %d CONTINUATION frames were taken", frames)
		}
		if res.code != -1 && res.code != int64(http2.ErrCodeProtocol) && res.code != int64(http2.ErrCodeEnhanceYourCalm) {
			t.Errorf("GOAWAY code %d, want PROTOCOL_ERROR, ENHANCE_YOUR_CALM or a close", res.code)
		}
	})

	// The same with empty CONTINUATION frames: no header bytes to count,
	// so x/net's limit never trips; the idle timeout (no stream is open
	// while a header block is read) ends the connection instead.
	t.Run("empty continuation", func(t *testing.T) {
		const frames = 2_000_000
		// 18 MB at most, most of it left in socket buffers at the close.
		flood(t, frames, true, 5*time.Second, func(a *h2Attacker, i int) error {
			if i == 0 {
				return a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: a.headerBlock("flood.test", "/"), EndStream: true})
			}
			return a.fr.WriteContinuation(1, false, nil)
		})
	})

	// An HPACK bomb: one 4 KB field put in the dynamic table, then a
	// header block naming it a thousand times, a byte each: 4 MB decoded
	// from 1 KB on the wire. x/net counts the decoded size against
	// max_header_bytes, keeps no more, and answers that stream 431.
	t.Run("hpack bomb", func(t *testing.T) {
		a := dialH2Attacker(t, floodProxy(t).addr)
		fields := func(extra ...hpack.HeaderField) []byte {
			a.hb.Reset()
			for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "bomb.test"}, {":path", "/"}} {
				_ = a.he.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
			}
			for _, f := range extra {
				_ = a.he.WriteField(f)
			}
			return bytes.Clone(a.hb.Bytes())
		}
		// Stream 1 carries the entry once; it is indexed.
		first := fields(hpack.HeaderField{Name: "x-bomb", Value: strings.Repeat("b", 4000)})
		bomb := fields()
		for range 1000 {
			bomb = append(bomb, 0x80|62) // indexed: the newest dynamic entry
		}
		if a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: first, EndStream: true, EndHeaders: true}) != nil ||
			a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: bomb, EndStream: true, EndHeaders: true}) != nil ||
			a.bw.Flush() != nil {
			t.Fatal("write failed")
		}
		status := map[uint32]string{}
		for len(status) < 2 {
			f, err := a.fr.ReadFrame()
			if err != nil {
				t.Fatalf("reading the answers: %v (got %v)", err, status)
			}
			if h, ok := f.(*http2.MetaHeadersFrame); ok {
				status[h.StreamID] = h.PseudoValue("status")
			}
		}
		if status[1] != "200" || status[3] != "431" {
			t.Errorf("statuses %v, want 200 for the entry's stream and 431 for the bomb", status)
		}
	})

	// SETTINGS and PINGs each make the server owe an acknowledgement; a
	// client that never reads them fills the send queue. x/net closes the
	// connection past 10,000 queued control frames (PINGs) and owes one
	// ACK for any number of SETTINGS; the write that makes no progress
	// for timeouts.idle (1s here) ends the connection either way, during
	// the flood or once it stops, and so does the flush at close
	// (l7/h2batch.go; it waited 5s before).
	for _, tc := range []struct {
		name  string
		write func(a *h2Attacker) error
	}{
		{"settings", func(a *h2Attacker) error {
			return a.fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0})
		}},
		{"ping", func(a *h2Attacker) error { return a.fr.WritePing(false, [8]byte{'f', 'l', 'o', 'o', 'd'}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const frames = 2_000_000 // 30 MB of frames at most
			flood(t, frames, false, 3*time.Second, func(a *h2Attacker, _ int) error { return tc.write(a) })
		})
	}
}

// TestHostileH2WindowZero: a client opens 100 streams for large responses
// with an initial window of 0 and never grants credit, while it keeps the
// connection busy answering nothing but PINGs of its own. Each stream
// must be reset at timeouts.idle (1s here; l7/h2stall.go), its backend
// request ended, and the proxy's memory meanwhile stay bounded: no
// response is buffered whole.
func TestHostileH2WindowZero(t *testing.T) {
	var started, ended atomic.Int64
	be := startProtoHTTPBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		defer ended.Add(1)
		chunk := make([]byte, 64<<10)
		for range 1 << 10 { // 64 MiB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	pp := &protoProxy{proc: hostileProxy(t, fmt.Sprintf(`backend "http://%s" {}`, be))}
	pp.addr = pp.proc.addr("web")
	pid := pp.proc.cmd.Process.Pid
	before, err := rssBytes(pid)
	if err != nil {
		t.Fatal(err)
	}
	rss := startRSSSampler(pid)

	a := dialH2Attacker(t, pp.addr)
	if a.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}) != nil {
		t.Fatal("writing SETTINGS failed")
	}
	const streams = 100
	block := a.headerBlock("zero.test", "/big")
	for id := uint32(1); id < 2*streams; id += 2 {
		if a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true}) != nil {
			t.Fatal("writing HEADERS failed")
		}
	}
	if a.bw.Flush() != nil {
		t.Fatal("flush failed")
	}
	// Read everything; a PING every 100ms keeps bytes moving both ways
	// so that only the streams' own stall can end them.
	resets := make(chan uint32, streams)
	go func() {
		for {
			f, err := a.fr.ReadFrame()
			if err != nil {
				close(resets)
				return
			}
			if r, ok := f.(*http2.RSTStreamFrame); ok {
				resets <- r.StreamID
			}
		}
	}()
	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	got := 0
	for got < streams && time.Since(start) < 10*time.Second {
		select {
		case _, ok := <-resets:
			if !ok {
				t.Fatalf("connection ended after %d stream resets", got)
			}
			got++
		case <-tick.C:
			_ = a.fr.WritePing(false, [8]byte{'b', 'u', 's', 'y'})
			_ = a.bw.Flush()
		}
	}
	took := time.Since(start)
	peak := rss.finish()
	if got < streams {
		t.Fatalf("%d of %d streams without credit reset after %v", got, streams, took)
	}
	if took > 6*time.Second {
		t.Errorf("streams without credit reset after %v, want about 1s", took)
	}
	for deadline := time.Now().Add(5 * time.Second); ended.Load() < started.Load() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if s, e := started.Load(), ended.Load(); e < s {
		t.Errorf("%d of %d backend responses still being written after their streams were reset", s-e, s)
	}
	if peak-before > h2FloodLimit {
		t.Errorf("proxy RSS grew from %d MiB to %d MiB for %d streams without credit", before>>20, peak>>20, streams)
	}
	t.Logf("%d streams reset after %v; backend saw %d requests; RSS %d -> %d MiB", got, took.Round(time.Millisecond), started.Load(), before>>20, peak>>20)
}
