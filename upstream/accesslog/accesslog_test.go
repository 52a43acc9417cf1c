package accesslog

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a bytes.Buffer safe for the writer goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var t0 = time.Date(2026, 11, 27, 3, 4, 5, 123456000, time.UTC)

func sampleHTTP() *HTTP {
	return &HTTP{
		Time: t0, Client: netip.MustParseAddr("203.0.113.7"), Method: "GET", Host: "api.example.com",
		Path: "/v1/\"quoted\"\n\xff", URI: "/v1/x?y=1", Proto: "HTTP/2.0", Status: 201, Bytes: 42,
		Duration: 1500 * time.Microsecond, Entrypoint: "web", Route: "api", Service: "svc", Backend: "127.0.0.1:9001",
		RequestID: "abc", TLSVersion: tls.VersionTLS13, SNI: "api.example.com", User: "alice",
		Referer: "https://r/", UserAgent: "curl/8 \"x\"",
	}
}

func TestJSONLines(t *testing.T) {
	var out syncBuffer
	w := New(&out, Options{Format: JSON})
	w.LogHTTP(sampleHTTP())
	w.LogConn(&Conn{Time: t0, Network: "udp", Entrypoint: "dns", Route: "dns", Service: "dns",
		Client: netip.MustParseAddrPort("[::1]:5353"), Backend: "127.0.0.1:53", BytesIn: 10, BytesOut: 20,
		Duration: time.Second, Reason: "idle"})
	if err := w.CloseWithin(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines: %q", len(lines), out.String())
	}
	var h map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &h); err != nil {
		t.Fatalf("http line %q: %v", lines[0], err)
	}
	want := map[string]any{
		"time": "2026-11-27T03:04:05.123456Z", "type": "http", "client": "203.0.113.7", "method": "GET",
		"host": "api.example.com", "path": "/v1/\"quoted\"\n\ufffd", "protocol": "HTTP/2.0", "status": 201.0,
		"bytes": 42.0, "duration": 0.0015, "entrypoint": "web", "route": "api", "service": "svc",
		"backend": "127.0.0.1:9001", "request_id": "abc", "tls_version": "1.3", "sni": "api.example.com", "user": "alice",
	}
	for k, v := range want {
		if h[k] != v {
			t.Errorf("http %s = %#v, want %#v", k, h[k], v)
		}
	}
	if len(h) != len(want) {
		t.Errorf("http line has %d fields, want %d: %s", len(h), len(want), lines[0])
	}
	var c map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &c); err != nil {
		t.Fatalf("conn line %q: %v", lines[1], err)
	}
	wantC := map[string]any{"type": "udp", "client": "[::1]:5353", "entrypoint": "dns", "route": "dns",
		"service": "dns", "backend": "127.0.0.1:53", "bytes_in": 10.0, "bytes_out": 20.0, "duration": 1.0, "reason": "idle"}
	for k, v := range wantC {
		if c[k] != v {
			t.Errorf("conn %s = %#v, want %#v", k, c[k], v)
		}
	}
	if w.Written() != 2 || w.Dropped() != 0 {
		t.Errorf("written %d dropped %d, want 2, 0", w.Written(), w.Dropped())
	}
}

func TestClockMatchesAppendFormat(t *testing.T) {
	var c clock
	for _, tm := range []time.Time{t0, t0.Add(999 * time.Nanosecond), t0.Add(time.Second + 7*time.Microsecond),
		time.Date(2027, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 3600))} {
		got := string(c.appendTime(nil, tm))
		want := tm.UTC().Format("2006-01-02T15:04:05.000000Z")
		if got != want {
			t.Errorf("appendTime(%v) = %q, want %q", tm, got, want)
		}
	}
}

func TestCLFLines(t *testing.T) {
	tests := []struct {
		name   string
		format Format
		want   string
	}{
		{"common", Common, `203.0.113.7 - alice [27/Nov/2026:03:04:05 +0000] "GET /v1/x?y=1 HTTP/2.0" 201 42` + "\n"},
		{"combined", Combined, `203.0.113.7 - alice [27/Nov/2026:03:04:05 +0000] "GET /v1/x?y=1 HTTP/2.0" 201 42 "https://r/" "curl/8\x20\x22x\x22"` + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := string(appendHTTPCLF(nil, sampleHTTP(), tc.format == Combined))
			if got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestEscapeIsValidJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "\x00\x1f\x7f", "é€😀", "\xc3\x28", `\"`, "a\u2028b"} {
		b := append(appendEscaped([]byte{'"'}, s), '"')
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Errorf("%q -> %s: %v", s, b, err)
		}
	}
}

// blockingWriter blocks every Write until released, like a FIFO nobody
// reads.
type blockingWriter struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	b.once.Do(func() { close(b.entered) })
	<-b.release
	return len(p), nil
}

func TestSlowSinkDropsWithoutBlocking(t *testing.T) {
	sink := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	var drops int
	var mu sync.Mutex
	w := New(sink, Options{Format: JSON, Queue: 4, OnDrop: func() { mu.Lock(); drops++; mu.Unlock() }})
	e := sampleHTTP()
	// Fill the 64 KiB bufio buffer so the writer reaches the sink and
	// blocks there, then fill the queue.
	deadline := time.After(30 * time.Second)
	for {
		w.LogHTTP(e)
		select {
		case <-sink.entered:
		case <-deadline:
			t.Fatal("the writer never reached the sink")
		default:
			continue
		}
		break
	}
	const more = 1000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range more {
			w.LogHTTP(e)
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("LogHTTP blocked on a stuck sink")
	}
	if w.Dropped() < more-4 {
		t.Errorf("dropped %d, want at least %d", w.Dropped(), more-4)
	}
	mu.Lock()
	if uint64(drops) != w.Dropped() {
		t.Errorf("OnDrop called %d times, Dropped %d", drops, w.Dropped())
	}
	mu.Unlock()
	close(sink.release)
	if err := w.CloseWithin(10 * time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestCloseTimesOutOnStuckFile(t *testing.T) {
	// A Writer on a caller's stuck writer returns ctx's error from Close;
	// the goroutine ends once the writer is released.
	sink := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	w := New(sink, Options{})
	w.LogConn(&Conn{Time: t0, Network: "tcp"})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.Close(ctx); err == nil {
		t.Fatal("Close returned nil with a stuck sink")
	}
	close(sink.release)
	<-w.done
	w.LogConn(&Conn{})
	if w.Dropped() != 1 {
		t.Errorf("a line after Close: dropped %d, want 1", w.Dropped())
	}
}

func TestNilWriter(t *testing.T) {
	var w *Writer
	w.LogHTTP(sampleHTTP())
	w.LogConn(&Conn{})
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkLogHTTP(b *testing.B) {
	w := New(discard{}, Options{Queue: 1 << 16})
	defer w.CloseWithin(10 * time.Second)
	e := sampleHTTP()
	b.ReportAllocs()
	for b.Loop() {
		w.LogHTTP(e)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
