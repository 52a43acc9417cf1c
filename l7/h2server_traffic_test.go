package l7

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// HTTP/2 over batchConn under abuse: streams reset by the client while
// their bodies flow, uploads and downloads of every size on one
// connection, and the server closed in the middle of it all. Leaked drain
// goroutines or stuck serve loops are caught by goleak (TestMain).

// h2Pattern is n bytes of a body that says where each byte belongs, so a
// byte from another stream or out of place shows.
func h2Pattern(seed, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(seed*31 + i*7 + i>>8)
	}
	return b
}

func h2EchoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seed, _ := strconv.Atoi(r.URL.Query().Get("seed"))
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		if r.Method == http.MethodPost {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				return // reset by the client
			}
			if !bytes.Equal(b, h2Pattern(seed, len(b))) {
				http.Error(w, "upload corrupted", http.StatusBadRequest)
				return
			}
		}
		w.Header().Set("X-Seed", strconv.Itoa(seed))
		body := h2Pattern(seed, n)
		for len(body) > 0 { // in pieces: many DATA frames, many flushes
			k := min(len(body), 3000+seed%5000)
			if _, err := w.Write(body[:k]); err != nil {
				return
			}
			body = body[k:]
			if seed%3 == 0 {
				http.NewResponseController(w).Flush()
			}
		}
	})
}

// TestH2ServerResetsAndMixedSizes: on one connection (TLS, then h2c),
// concurrent streams with bodies from 0 to 600 KB both ways, every fourth
// one reset by the client part way through its response body; every
// stream not reset gets its own body back whole and in order.
func TestH2ServerResetsAndMixedSizes(t *testing.T) {
	f := startH2Front(t, h2EchoHandler(), ServerOptions{IdleTimeout: 30 * time.Second, MaxConcurrentStreams: 32})
	for _, useTLS := range []bool{true, false} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			tr := h2Client(useTLS)
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
			sizes := []int{0, 1, 100, 16 << 10, 70 << 10, 600 << 10}
			var wg sync.WaitGroup
			errs := make(chan error, 256)
			for g := range 16 {
				wg.Go(func() {
					for i := range 12 {
						seed := g*100 + i
						n := sizes[(g+i)%len(sizes)]
						url := f.url(useTLS, fmt.Sprintf("/?seed=%d&n=%d", seed, n))
						ctx, cancel := context.WithCancel(context.Background())
						var req *http.Request
						if i%3 == 1 {
							req, _ = http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(h2Pattern(seed, sizes[(g+2*i)%len(sizes)])))
						} else {
							req, _ = http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
						}
						reset := i%4 == 3 && n > 1000
						resp, err := client.Do(req)
						if err != nil {
							cancel()
							errs <- fmt.Errorf("seed %d: %w", seed, err)
							continue
						}
						if reset {
							io.ReadFull(resp.Body, make([]byte, 500))
							cancel() // RST_STREAM with the body in flight
							resp.Body.Close()
							continue
						}
						b, err := io.ReadAll(resp.Body)
						resp.Body.Close()
						cancel()
						switch {
						case err != nil:
							errs <- fmt.Errorf("seed %d: body: %w", seed, err)
						case resp.StatusCode != 200 || resp.Header.Get("X-Seed") != strconv.Itoa(seed):
							errs <- fmt.Errorf("seed %d: %s, X-Seed %q: %s", seed, resp.Status, resp.Header.Get("X-Seed"), b)
						case !bytes.Equal(b, h2Pattern(seed, n)):
							errs <- fmt.Errorf("seed %d: %d bytes, not the %d sent", seed, len(b), n)
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// TestH2ServerCloseDuringTraffic: Close in the middle of concurrent
// uploads and downloads ends every stream at once (each client call
// returns), and Shutdown with an expired context then returns at once.
func TestH2ServerCloseDuringTraffic(t *testing.T) {
	for _, useTLS := range []bool{true, false} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			f := startH2Front(t, h2EchoHandler(), ServerOptions{})
			tr := h2Client(useTLS)
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
			var wg sync.WaitGroup
			var mu sync.Mutex
			served := 0
			first := make(chan struct{})
			var once sync.Once
			for g := range 8 {
				wg.Go(func() {
					for i := range 200 {
						seed := g*1000 + i
						var body io.Reader
						method := http.MethodGet
						if i%2 == 0 {
							method, body = http.MethodPost, bytes.NewReader(h2Pattern(seed, 50<<10))
						}
						req, _ := http.NewRequest(method, f.url(useTLS, fmt.Sprintf("/?seed=%d&n=%d", seed, 200<<10)), body)
						resp, err := client.Do(req)
						if err != nil {
							return
						}
						b, err := io.ReadAll(resp.Body)
						resp.Body.Close()
						if err != nil {
							return
						}
						if !bytes.Equal(b, h2Pattern(seed, 200<<10)) {
							t.Errorf("seed %d: a whole answer with the wrong bytes (%d)", seed, len(b))
							return
						}
						mu.Lock()
						served++
						mu.Unlock()
						once.Do(func() { close(first) })
					}
				})
			}
			select {
			case <-first:
			case <-time.After(time.Minute):
				t.Fatal("no request served in a minute")
			}
			f.srv.Close()
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(time.Minute):
				t.Fatal("client calls still running a minute after Close")
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := f.srv.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
				t.Fatalf("Shutdown after Close: %v", err)
			}
			select {
			case <-f.done:
			case <-time.After(time.Minute):
				t.Fatal("Serve still running a minute after Close")
			}
			t.Logf("%d requests served before Close", served)
		})
	}
}

// TestH2ServerStalledReaderClose: a client that opens its flow-control
// windows wide, asks for a large body and then reads nothing leaves the
// server's writes (batchConn's drain) blocked on a full socket; Close still
// ends the connection, the handler and Serve at once (goleak checks that
// no drain or serve goroutine is left), and Shutdown before it returns at
// its context's end.
func TestH2ServerStalledReaderClose(t *testing.T) {
	handlerDone := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(handlerDone)
		chunk := make([]byte, 64<<10)
		for range 1024 { // 64 MB: far more than the socket buffers
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	f := startH2Front(t, h, ServerOptions{})
	c, err := tls.Dial("tcp", f.tlsAddr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, c)
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1})
	fr.WriteWindowUpdate(0, 1<<31-1-65535)
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "x"}, {":path", "/big"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
	// Read nothing from now on. Wait until the server's writes block: the
	// handler cannot finish 64 MB into a peer that does not read.
	select {
	case <-handlerDone:
		t.Fatal("the handler wrote 64 MB to a client that reads nothing")
	case <-time.After(500 * time.Millisecond):
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := f.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a stalled stream: %v, want its deadline", err)
	}
	start := time.Now()
	f.srv.Close()
	select {
	case <-handlerDone:
	case <-time.After(time.Minute):
		t.Fatal("handler still writing a minute after Close")
	}
	select {
	case <-f.done:
	case <-time.After(time.Minute):
		t.Fatal("Serve still running a minute after Close")
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("Close took %v with a stalled reader (the flush bound is %v)", d, batchCloseFlush)
	}
}
