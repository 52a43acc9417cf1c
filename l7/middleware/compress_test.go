package middleware

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"go.uber.org/goleak"

	"github.com/proxynow/proxynow/config"
)

func buildCompressMW(t testing.TB, c config.Compress) Middleware {
	t.Helper()
	mw, err := Build(&config.Middleware{Name: "c", Kind: config.MWCompress, Compress: &c}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	return mw
}

// jsonBody is a JSON-ish body of about n bytes.
func jsonBody(n int) []byte {
	var b bytes.Buffer
	b.WriteString("[")
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, `{"id":%d,"name":"user-%d","email":"user%d@example.com","active":%t,"score":%d.%02d,"tags":["a","b%d"]},`,
			i, i*7919%10007, i, i%3 == 0, i*31%1000, i%100, i%17)
	}
	out := b.Bytes()[:n-1]
	return append(out, ']')
}

// decode decodes body by encoding, with the same libraries.
func decode(t *testing.T, enc string, body io.Reader) []byte {
	t.Helper()
	var r io.Reader
	switch enc {
	case encGzip:
		zr, err := gzip.NewReader(body)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case encZstd:
		zr, err := zstd.NewReader(body, zstd.WithDecoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	case encBr:
		r = brotli.NewReader(body)
	default:
		t.Fatalf("encoding %q", enc)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", enc, err)
	}
	return out
}

func TestCompressRoundTrip(t *testing.T) {
	body := jsonBody(300 << 10)
	for _, tc := range []struct {
		name    string
		enc     string
		length  bool // Content-Length declared
		chunk   int
		vary    string
		wantVar []string
	}{
		{name: "zstd", enc: encZstd, length: true, chunk: 32 << 10},
		{name: "br", enc: encBr, length: true, chunk: 32 << 10},
		{name: "gzip", enc: encGzip, length: true, chunk: 32 << 10},
		{name: "zstd unknown length small writes", enc: encZstd, chunk: 100},
		{name: "br unknown length small writes", enc: encBr, chunk: 100},
		{name: "gzip unknown length small writes", enc: encGzip, chunk: 100},
		{name: "vary appended", enc: encGzip, chunk: 4096, vary: "Origin", wantVar: []string{"Origin", "Accept-Encoding"}},
		{name: "vary not duplicated", enc: encGzip, chunk: 4096, vary: "origin, accept-encoding", wantVar: []string{"origin, accept-encoding"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := buildCompressMW(t, config.Compress{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				w.Header().Set("ETag", `"v1"`)
				w.Header().Set("Accept-Ranges", "bytes")
				if tc.vary != "" {
					w.Header().Set("Vary", tc.vary)
				}
				if tc.length {
					w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				}
				for b := body; len(b) > 0; {
					n := min(tc.chunk, len(b))
					if _, err := w.Write(b[:n]); err != nil {
						t.Error(err)
						return
					}
					b = b[n:]
				}
			}))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header.Set("Accept-Encoding", tc.enc)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			res := rec.Result()
			if got := res.Header.Get("Content-Encoding"); got != tc.enc {
				t.Fatalf("Content-Encoding %q, want %q", got, tc.enc)
			}
			if res.Header.Get("Content-Length") != "" || res.Header.Get("Accept-Ranges") != "" {
				t.Errorf("Content-Length %q, Accept-Ranges %q kept", res.Header.Get("Content-Length"), res.Header.Get("Accept-Ranges"))
			}
			if got := res.Header.Get("ETag"); got != `W/"v1"` {
				t.Errorf("ETag %q, want weak", got)
			}
			wantVary := tc.wantVar
			if wantVary == nil {
				wantVary = []string{"Accept-Encoding"}
			}
			if got := res.Header.Values("Vary"); fmt.Sprint(got) != fmt.Sprint(wantVary) {
				t.Errorf("Vary %q, want %q", got, wantVary)
			}
			if rec.Body.Len() >= len(body)/2 {
				t.Errorf("compressed to %d of %d bytes", rec.Body.Len(), len(body))
			}
			if got := decode(t, tc.enc, rec.Body); !bytes.Equal(got, body) {
				t.Fatalf("round trip differs: %d bytes, want %d", len(got), len(body))
			}
		})
	}
}

func TestCompressSkipped(t *testing.T) {
	big := jsonBody(8 << 10)
	for _, tc := range []struct {
		name     string
		method   string
		ae       string
		code     int
		header   map[string]string
		body     []byte
		wantVary bool
	}{
		{name: "small body with length", code: 200, header: map[string]string{"Content-Length": "100"}, body: big[:100]},
		{name: "small body without length", code: 200, body: big[:1023]},
		{name: "already encoded", code: 200, header: map[string]string{"Content-Encoding": "gzip"}, body: big},
		{name: "206", code: 206, header: map[string]string{"Content-Range": "bytes 0-8191/100000"}, body: big},
		{name: "content-range on 200", code: 200, header: map[string]string{"Content-Range": "bytes 0-8191/100000"}, body: big},
		{name: "no-transform", code: 200, header: map[string]string{"Cache-Control": "public, No-Transform"}, body: big},
		{name: "HEAD", method: http.MethodHead, code: 200, header: map[string]string{"Content-Length": "8192"}},
		{name: "204", code: 204},
		{name: "304", code: 304, header: map[string]string{"ETag": `"x"`}, wantVary: true},
		{name: "type not listed", code: 200, header: map[string]string{"Content-Type": "image/png"}, body: big},
		{name: "empty type", code: 200, header: map[string]string{"Content-Type": ""}, body: big},
		{name: "no Accept-Encoding", ae: "-", code: 200, body: big, wantVary: true},
		{name: "only unknown encodings", ae: "compress, deflate", code: 200, body: big, wantVary: true},
		{name: "gzip refused", ae: "gzip;q=0, identity", code: 200, body: big, wantVary: true},
		{name: "identity preferred", ae: "gzip;q=0.5, identity;q=1", code: 200, body: big, wantVary: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := buildCompressMW(t, config.Compress{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if _, ok := tc.header["Content-Type"]; !ok {
					w.Header().Set("Content-Type", "text/plain")
				}
				for k, v := range tc.header {
					w.Header()[k] = []string{v}
				}
				w.WriteHeader(tc.code)
				_, _ = w.Write(tc.body)
			}))
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			req := httptest.NewRequest(method, "/", nil)
			switch tc.ae {
			case "":
				req.Header.Set("Accept-Encoding", "zstd, br, gzip")
			case "-":
			default:
				req.Header.Set("Accept-Encoding", tc.ae)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.code {
				t.Errorf("status %d, want %d", rec.Code, tc.code)
			}
			if got, want := rec.Header().Get("Content-Encoding"), tc.header["Content-Encoding"]; got != want {
				t.Errorf("Content-Encoding %q, want %q", got, want)
			}
			if !bytes.Equal(rec.Body.Bytes(), tc.body) {
				t.Errorf("body changed: %d bytes, want %d", rec.Body.Len(), len(tc.body))
			}
			if got := rec.Header().Get("Vary") != ""; got != tc.wantVary {
				t.Errorf("Vary %q, want it: %t", rec.Header().Get("Vary"), tc.wantVary)
			}
		})
	}
}

func TestCompressSniffsMissingType(t *testing.T) {
	page := "<!DOCTYPE html><html><body>" + strings.Repeat("<p>hello</p>", 200) + "</body></html>"
	h := buildCompressMW(t, config.Compress{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, page)
	}))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if got := rec.Header().Get("Content-Type"); !strings.HasPrefix(got, "text/html") {
		t.Errorf("Content-Type %q, want the sniffed text/html", got)
	}
	if got := decode(t, rec.Header().Get("Content-Encoding"), rec.Body); string(got) != page {
		t.Error("round trip differs")
	}
}

func TestCompressNegotiate(t *testing.T) {
	def := []string{encZstd, encBr, encGzip}
	for _, tc := range []struct {
		name   string
		order  []string
		accept []string
		want   string // "" for identity
	}{
		{name: "none", accept: nil},
		{name: "one", accept: []string{"gzip"}, want: encGzip},
		{name: "configured order among equals", accept: []string{"gzip, br"}, want: encBr},
		{name: "configured order among equals, zstd", accept: []string{"gzip, br, zstd"}, want: encZstd},
		{name: "user order", order: []string{encGzip, encZstd}, accept: []string{"zstd, gzip"}, want: encGzip},
		{name: "q wins over order", accept: []string{"zstd;q=0.5, gzip"}, want: encGzip},
		{name: "q with spaces and case", accept: []string{"ZSTD ; Q=0.2 , br;q=0.300"}, want: encBr},
		{name: "q=0 excludes", accept: []string{"zstd;q=0, br;q=0.0, gzip"}, want: encGzip},
		{name: "all q=0", accept: []string{"gzip;q=0"}},
		{name: "star", accept: []string{"*"}, want: encZstd},
		{name: "star with exclusion", accept: []string{"*, zstd;q=0"}, want: encBr},
		{name: "star lower than listed", accept: []string{"*;q=0.1, gzip;q=0.5"}, want: encGzip},
		{name: "star q=0", accept: []string{"*;q=0"}},
		{name: "identity only", accept: []string{"identity"}},
		{name: "identity above", accept: []string{"br;q=0.5, identity"}},
		{name: "identity equal", accept: []string{"br, identity"}, want: encBr},
		{name: "identity not listed", accept: []string{"gzip;q=0.5"}, want: encGzip},
		{name: "x-gzip", accept: []string{"x-gzip"}, want: encGzip},
		{name: "bad q ignored", accept: []string{"zstd;q=2, br;q=abc, gzip;q=0.5"}, want: encGzip},
		{name: "several header lines", accept: []string{"deflate", "br;q=0.9"}, want: encBr},
		{name: "empty elements", accept: []string{" , ,gzip,"}, want: encGzip},
		{name: "not configured", order: []string{encGzip}, accept: []string{"zstd, br"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			order := tc.order
			if order == nil {
				order = def
			}
			c, err := buildCompress(&config.Compress{Encodings: order})
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if k := c.negotiate(tc.accept); k != nil {
				got = k.name
			}
			if got != tc.want {
				t.Errorf("negotiate(%q) = %q, want %q", tc.accept, got, tc.want)
			}
		})
	}
}

// TestCompressSSE checks that each event reaches the client on Flush: the
// handler sends the next event only once the client decoded the last.
func TestCompressSSE(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, enc := range []string{encZstd, encBr, encGzip} {
		t.Run(enc, func(t *testing.T) {
			const events = 5
			ack := make(chan struct{})
			h := buildCompressMW(t, config.Compress{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.Header().Set("Cache-Control", "no-cache")
				for i := range events {
					fmt.Fprintf(w, "id: %d\ndata: event %d\n\n", i, i)
					w.(http.Flusher).Flush()
					select {
					case <-ack:
					case <-r.Context().Done():
						return
					}
				}
			}))
			srv := httptest.NewServer(h)
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			req.Header.Set("Accept-Encoding", enc)
			tr := &http.Transport{DisableCompression: true}
			defer tr.CloseIdleConnections()
			res, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if got := res.Header.Get("Content-Encoding"); got != enc {
				t.Fatalf("Content-Encoding %q, want %q", got, enc)
			}
			var dr io.Reader
			switch enc {
			case encGzip:
				zr, err := gzip.NewReader(res.Body)
				if err != nil {
					t.Fatal(err)
				}
				dr = zr
			case encZstd:
				zr, err := zstd.NewReader(res.Body, zstd.WithDecoderConcurrency(1))
				if err != nil {
					t.Fatal(err)
				}
				defer zr.Close()
				dr = zr
			case encBr:
				dr = brotli.NewReader(res.Body)
			}
			br := bufio.NewReader(dr)
			for i := range events {
				want := []string{fmt.Sprintf("id: %d", i), fmt.Sprintf("data: event %d", i), ""}
				for _, w := range want {
					line, err := br.ReadString('\n')
					if err != nil {
						t.Fatalf("event %d: %v (not flushed?)", i, err)
					}
					if got := strings.TrimSuffix(line, "\n"); got != w {
						t.Fatalf("event %d: line %q, want %q", i, got, w)
					}
				}
				ack <- struct{}{}
			}
			if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
				t.Errorf("after the events: %q, %v", rest, err)
			}
		})
	}
}

// TestCompressHijack checks that an upgrade through compress keeps the raw
// connection.
func TestCompressHijack(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	h := buildCompressMW(t, config.Compress{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n" + strings.Repeat("raw", 1000))
		_ = brw.Flush()
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "test")
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusSwitchingProtocols || res.Header.Get("Content-Encoding") != "" {
		t.Fatalf("status %d, Content-Encoding %q", res.StatusCode, res.Header.Get("Content-Encoding"))
	}
	got, _ := io.ReadAll(res.Body)
	if string(got) != strings.Repeat("raw", 1000) {
		t.Errorf("upgraded stream changed: %d bytes", len(got))
	}
}

// discardWriter is a ResponseWriter that counts bytes, for benchmarks.
type discardWriter struct {
	h http.Header
	n int64
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// BenchmarkCompress reports MB/s per core at the default levels over a
// 1 MiB JSON-ish body written in 32 KiB chunks, and the compressed size.
func BenchmarkCompress(b *testing.B) {
	body := jsonBody(1 << 20)
	for _, enc := range []string{encGzip, encZstd, encBr} {
		b.Run(enc, func(b *testing.B) {
			h := buildCompressMW(b, config.Compress{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				for p := body; len(p) > 0; p = p[min(32<<10, len(p)):] {
					_, _ = w.Write(p[:min(32<<10, len(p))])
				}
			}))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header.Set("Accept-Encoding", enc)
			w := &discardWriter{h: make(http.Header)}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				clear(w.h)
				w.n = 0
				h.ServeHTTP(w, req)
			}
			b.ReportMetric(float64(w.n)/float64(len(body)), "ratio")
		})
	}
}

// TestCompressNotModified: a 304 carries the Vary and the (weakened) ETag
// of the 200 it stands for (RFC 9110 section 15.4.5), so a cache holding
// the compressed 200 under W/"x" can match it.
func TestCompressNotModified(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ae       string
		header   map[string]string
		wantETag string
		wantVary bool
	}{
		{name: "compressible", ae: "gzip", wantETag: `W/"x"`, wantVary: true},
		{name: "already weak", ae: "br", header: map[string]string{"ETag": `W/"x"`}, wantETag: `W/"x"`, wantVary: true},
		{name: "type listed", ae: "gzip", header: map[string]string{"Content-Type": "text/html"}, wantETag: `W/"x"`, wantVary: true},
		{name: "no Accept-Encoding", wantETag: `"x"`, wantVary: true},
		{name: "type not listed", ae: "gzip", header: map[string]string{"Content-Type": "image/png"}, wantETag: `"x"`},
		{name: "no-transform", ae: "gzip", header: map[string]string{"Cache-Control": "no-transform"}, wantETag: `"x"`},
		{name: "encoded by the backend", ae: "gzip", header: map[string]string{"Content-Encoding": "gzip"}, wantETag: `"x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := buildCompressMW(t, config.Compress{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("ETag", `"x"`)
				for k, v := range tc.header {
					w.Header()[k] = []string{v}
				}
				w.WriteHeader(http.StatusNotModified)
			}))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if tc.ae != "" {
				req.Header.Set("Accept-Encoding", tc.ae)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != 304 || rec.Body.Len() != 0 || rec.Header().Get("Content-Encoding") != tc.header["Content-Encoding"] {
				t.Fatalf("%d, %d body bytes, Content-Encoding %q", rec.Code, rec.Body.Len(), rec.Header().Get("Content-Encoding"))
			}
			if got := rec.Header().Get("ETag"); got != tc.wantETag {
				t.Errorf("ETag %s, want %s", got, tc.wantETag)
			}
			if got := rec.Header().Get("Vary") == "Accept-Encoding"; got != tc.wantVary {
				t.Errorf("Vary %q, want Accept-Encoding: %t", rec.Header().Get("Vary"), tc.wantVary)
			}
		})
	}
}
