package l7

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/proxynow/proxynow/config"
)

// h2Front serves h with NewServer over TLS (handshake done before the
// server sees the connection, as tlsmux does) and over plaintext, and
// counts the writes the server makes to its TCP connections.
type h2Front struct {
	srv            *Server
	tlsAddr, plain string
	writes         atomic.Int64
	done           chan struct{}
}

func startH2Front(tb testing.TB, h http.Handler, o ServerOptions) *h2Front {
	tb.Helper()
	f := &h2Front{done: make(chan struct{})}
	o.Handler = h
	f.srv = NewServer(o)
	cfg := &tls.Config{Certificates: []tls.Certificate{guardTestCert(tb)}, NextProtos: []string{"h2", "http/1.1"}}
	var wg sync.WaitGroup
	for _, useTLS := range []bool{true, false} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		var l net.Listener = &writeCountListener{Listener: ln, n: &f.writes}
		if useTLS {
			f.tlsAddr = ln.Addr().String()
			l = guardTLSListener{l, cfg}
		} else {
			f.plain = ln.Addr().String()
		}
		wg.Add(1)
		go func() { defer wg.Done(); f.srv.Serve(l) }()
	}
	go func() { wg.Wait(); close(f.done) }()
	tb.Cleanup(func() {
		f.srv.Close()
		<-f.done
	})
	return f
}

// writeCountListener counts Write calls on its connections.
type writeCountListener struct {
	net.Listener
	n *atomic.Int64
}

func (l *writeCountListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &writeCountConn{Conn: c, n: l.n}, nil
}

type writeCountConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *writeCountConn) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(p)
}

// h2Client is an HTTP/2 client of f: over TLS, or h2c with prior knowledge.
func h2Client(useTLS bool) *http2.Transport {
	if useTLS {
		return &http2.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}}
	}
	return &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

func (f *h2Front) url(useTLS bool, path string) string {
	if useTLS {
		return "https://" + f.tlsAddr + path
	}
	return "http://" + f.plain + path
}

// TestH2ServerStreams: many concurrent streams on one connection, over TLS
// and h2c, each get their own body back whole (small ones batched into
// shared writes, large ones past the flow-control window written
// directly); requests over TLS carry its state, h2c ones none.
func TestH2ServerStreams(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("X-Proto", r.Proto)
		w.Header().Set("X-TLS", strconv.FormatBool(r.TLS != nil && r.TLS.HandshakeComplete))
		w.Write(bytes.Repeat([]byte{byte('a' + n%26)}, n))
	})
	f := startH2Front(t, h, ServerOptions{IdleTimeout: 30 * time.Second})
	for _, useTLS := range []bool{true, false} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			tr := h2Client(useTLS)
			defer tr.CloseIdleConnections()
			sizes := []int{0, 1, 13, 4000, 20000, 70000, 1 << 20}
			var wg sync.WaitGroup
			errs := make(chan error, 64)
			for i := range 48 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					n := sizes[i%len(sizes)]
					resp, err := (&http.Client{Transport: tr, Timeout: time.Minute}).Get(f.url(useTLS, "/?n="+strconv.Itoa(n)))
					if err != nil {
						errs <- err
						return
					}
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					switch {
					case err != nil:
						errs <- err
					case !bytes.Equal(body, bytes.Repeat([]byte{byte('a' + n%26)}, n)):
						errs <- fmt.Errorf("n=%d: got %d bytes, not the body sent", n, len(body))
					case resp.Header.Get("X-Proto") != "HTTP/2.0" || resp.Header.Get("X-TLS") != strconv.FormatBool(useTLS):
						errs <- fmt.Errorf("n=%d: proto %q tls %q", n, resp.Header.Get("X-Proto"), resp.Header.Get("X-TLS"))
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// TestH2ServerShutdown: Shutdown sends GOAWAY, lets the stream in flight
// finish, returns once the connection closed, and a connection arriving
// afterwards is not served.
func TestH2ServerShutdown(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
		io.WriteString(w, "done")
	})
	f := startH2Front(t, h, ServerOptions{})
	tr := h2Client(true)
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: time.Minute}
	got := make(chan string, 1)
	go func() {
		resp, err := c.Get(f.url(true, "/slow"))
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-entered
	shut := make(chan error, 1)
	go func() { shut <- f.srv.Shutdown(context.Background()) }()
	// The GOAWAY reaches the client: a new request on the same transport
	// needs a new connection, which is refused.
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := c.Get(f.url(true, "/fast"))
		if err != nil {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("requests still served a minute after Shutdown")
		}
		time.Sleep(10 * time.Millisecond) // polling the client's view; no event to wait on
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a stream in flight", err)
	default:
	}
	close(release)
	if b := <-got; b != "done" {
		t.Errorf("stream in flight: %q, want done", b)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// TestH2ServerShutdownTimeout: Shutdown returns ctx's error while a stream
// runs, and Close then ends it (the handler's context is cancelled).
func TestH2ServerShutdownTimeout(t *testing.T) {
	entered, cancelled := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done()
		close(cancelled)
	})
	f := startH2Front(t, h, ServerOptions{})
	tr := h2Client(false)
	defer tr.CloseIdleConnections()
	errc := make(chan error, 1)
	go func() {
		resp, err := (&http.Client{Transport: tr, Timeout: time.Minute}).Get(f.url(false, "/"))
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		errc <- err
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := f.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want deadline exceeded", err)
	}
	f.srv.Close()
	<-cancelled
	if err := <-errc; err == nil {
		t.Error("the client got a whole response from a closed server")
	}
}

// BenchmarkH2Server is h2load's shape in-process: one TLS connection, many
// concurrent streams, a 13-byte response from the handler (no proxying).
// writes/op is the server's write syscalls per request.
func BenchmarkH2Server(b *testing.B) {
	body := []byte("hello, world\n")
	f := startH2Front(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }), ServerOptions{})
	runH2Bench(b, f)
}

// BenchmarkH2Proxy is BenchmarkH2Server through the entry handler and a
// Proxy to an HTTP/1 backend (in the same process: allocs/op include the
// backend's and the client's).
func BenchmarkH2Proxy(b *testing.B) {
	px, _ := helloProxy(b)
	router, err := NewRouter([]*Route{{Config: &config.HTTPRoute{Name: "r", PathPrefix: "/", Service: "svc"}, Handler: px}})
	if err != nil {
		b.Fatal(err)
	}
	f := startH2Front(b, NewEntry("web", router, nil, nil), ServerOptions{})
	runH2Bench(b, f)
}

// runH2Bench sends GETs for / over one HTTP/2 TLS connection to f from 16
// goroutines per CPU, and reports the TLS writes per request.
func runH2Bench(b *testing.B, f *h2Front) {
	tr := h2Client(true)
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	url := f.url(true, "/")
	if resp, err := c.Get(url); err != nil { // the connection, outside the timing
		b.Fatal(err)
	} else {
		resp.Body.Close()
	}
	b.SetParallelism(16)
	b.ReportAllocs()
	start := f.writes.Load()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	b.ReportMetric(float64(f.writes.Load()-start)/float64(b.N), "writes/op")
}

// dialH2 opens a plaintext HTTP/2 connection to addr (the client preface
// and an empty SETTINGS frame), closed with the test, a minute's deadline
// on it.
func dialH2(t *testing.T, addr string) *http2.Framer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return fr
}

// TestH2ServerSettings: the HTTP/2 options reach the server: the
// SETTINGS frame advertises MaxConcurrentStreams and the 1 MiB frame size,
// and a connection idle for IdleTimeout is closed.
func TestH2ServerSettings(t *testing.T) {
	f := startH2Front(t, http.NotFoundHandler(), ServerOptions{MaxConcurrentStreams: 3, IdleTimeout: 200 * time.Millisecond})
	fr := dialH2(t, f.plain)
	frame, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := frame.(*http2.SettingsFrame)
	if !ok {
		t.Fatalf("first frame %v, want SETTINGS", frame)
	}
	if v, ok := sf.Value(http2.SettingMaxConcurrentStreams); !ok || v != 3 {
		t.Errorf("MAX_CONCURRENT_STREAMS = %d (%v), want 3", v, ok)
	}
	if v, ok := sf.Value(http2.SettingMaxFrameSize); !ok || v != 1<<20 {
		t.Errorf("MAX_FRAME_SIZE = %d (%v), want 1 MiB", v, ok)
	}
	// Idle: the server ends the connection (GOAWAY, then EOF).
	for {
		if _, err := fr.ReadFrame(); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("idle connection still open after a minute")
			}
			break
		}
	}
}

// TestH2ServerUpload: a request body larger than the flow-control windows
// reaches the handler whole.
func TestH2ServerUpload(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d %v", n, err)
	})
	f := startH2Front(t, h, ServerOptions{})
	tr := h2Client(true)
	defer tr.CloseIdleConnections()
	const size = 5 << 20
	resp, err := (&http.Client{Transport: tr, Timeout: time.Minute}).Post(f.url(true, "/"), "application/octet-stream", bytes.NewReader(make([]byte, size)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("%d <nil>", size); string(body) != want {
		t.Errorf("handler read %q, want %q", body, want)
	}
}
