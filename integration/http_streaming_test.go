//go:build linux

package integration

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	streamSize    = 1 << 30 // bytes each way
	streamTimeout = 120 * time.Second
	rssBudget     = 64 << 20
)

// prngStream is streamSize bytes from a ChaCha8 PRNG seeded with seed:
// generated on the fly, never held in memory.
func prngStream(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return io.LimitReader(rand.NewChaCha8(s), streamSize)
}

// prngSum is the hex sha256 of prngStream(seed).
func prngSum(seed byte) string {
	h := sha256.New()
	_, _ = io.Copy(h, prngStream(seed))
	return hex.EncodeToString(h.Sum(nil))
}

// TestHTTPStreaming moves 1 GiB up and 1 GiB down through proxynow: the bytes
// arrive intact and proxynow's RSS grows by less than 64 MiB (bodies are
// streamed, not buffered).
func TestHTTPStreaming(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB transfers; skipped with -short")
	}
	be := startHTTPBackend(t, "stream")
	be.setHandler(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/upload":
			h := sha256.New()
			n, err := io.Copy(h, r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
		case "/download":
			seed, _ := strconv.Atoi(r.URL.Query().Get("seed"))
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", strconv.Itoa(streamSize))
			_, _ = io.Copy(w, prngStream(byte(seed)))
		default:
			http.NotFound(w, r)
		}
	})
	p := startProxy(t, hcl(`
entrypoint "web" {
  address = "127.0.0.1:0"
}
http_route "all" {
  entrypoints = ["web"]
  service     = "stream"
}
service "stream" {
  backend "http://%s" {}
}
`, be.addr))
	base := "http://" + p.addr("web")
	c := newH1Client(t)
	c.Timeout = streamTimeout
	pid := p.cmd.Process.Pid

	// Warm up: one small request through, so the baseline includes the
	// first connection's buffers.
	if r := mustDo(t, c, base, reqSpec{path: "/upload", method: "POST", body: "warm"}); r.status != 200 {
		t.Fatalf("warm-up: %d %q", r.status, r.body)
	}

	measure := func(t *testing.T, transfer func() error) {
		t.Helper()
		before, err := rssBytes(pid)
		if err != nil {
			t.Fatal(err)
		}
		s := startRSSSampler(pid)
		start := time.Now()
		err = transfer()
		el := time.Since(start)
		peak := s.finish()
		t.Logf("1 GiB in %v (%.0f MiB/s); proxynow RSS %d MiB before, peak %d MiB (+%d MiB)",
			el.Round(time.Millisecond), float64(streamSize>>20)/el.Seconds(), before>>20, peak>>20, (peak-before)>>20)
		if err != nil {
			t.Fatal(err)
		}
		if el > streamTimeout {
			t.Errorf("transfer took %v, over %v", el, streamTimeout)
		}
		if grow := peak - before; grow >= rssBudget {
			t.Errorf("proxynow RSS grew by %d MiB during the transfer, want < %d MiB", grow>>20, rssBudget>>20)
		}
	}

	t.Run("upload 1 GiB", func(t *testing.T) {
		measure(t, func() error {
			h := sha256.New()
			req, err := http.NewRequest(http.MethodPut, base+"/upload", io.TeeReader(prngStream(1), h))
			if err != nil {
				return err
			}
			req.ContentLength = streamSize
			resp, err := c.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				return err
			}
			want := fmt.Sprintf("%d %x", streamSize, h.Sum(nil))
			if resp.StatusCode != 200 || string(b) != want {
				return fmt.Errorf("backend answered %d %q, want 200 %q", resp.StatusCode, b, want)
			}
			return nil
		})
	})

	t.Run("download 1 GiB", func(t *testing.T) {
		want := prngSum(2) // computed before measuring
		measure(t, func() error {
			resp, err := c.Get(base + "/download?seed=2")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			h := sha256.New()
			n, err := io.Copy(h, resp.Body)
			if err != nil {
				return fmt.Errorf("after %d bytes: %w", n, err)
			}
			if got := hex.EncodeToString(h.Sum(nil)); n != streamSize || got != want {
				return fmt.Errorf("received %d bytes with sha256 %s, want %d bytes with %s", n, got, streamSize, want)
			}
			return nil
		})
	})
}

// TestHTTPServerSentEvents: each event of a text/event-stream reaches the
// client before the backend produces the next one (the backend waits for
// the client's acknowledgement), over HTTP/1.1 and h2c.
func TestHTTPServerSentEvents(t *testing.T) {
	const events = 10
	const perEvent = 5 * time.Second
	acks := make(chan int)
	be := startHTTPBackend(t, "sse")
	be.setHandler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		fl := w.(http.Flusher)
		for i := range events {
			fmt.Fprintf(w, "id: %d\ndata: event %d\n\n", i, i)
			fl.Flush()
			select {
			case got := <-acks:
				if got != i {
					return
				}
			case <-time.After(perEvent):
				return // the client never saw event i: it was buffered
			case <-r.Context().Done():
				return
			}
		}
	})
	p := startProxy(t, hcl(`
entrypoint "web" {
  address = "127.0.0.1:0"
}
http_route "all" {
  entrypoints = ["web"]
  service     = "sse"
}
service "sse" {
  backend "http://%s" {}
}
`, be.addr))
	base := "http://" + p.addr("web")

	for _, kind := range []clientKind{clientH1, clientH2C} {
		t.Run(kind.String(), func(t *testing.T) {
			c := newH1Client(t)
			if kind == clientH2C {
				c = newH2CClient(t)
			}
			c.Timeout = 0
			resp, err := c.Get(base + "/events")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
				t.Fatalf("got %d %q", resp.StatusCode, ct)
			}
			type ev struct {
				data string
				err  error
			}
			evs := make(chan ev, events+2)
			go func() {
				defer close(evs)
				br := bufio.NewReader(resp.Body)
				var data string
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						evs <- ev{err: err}
						return
					}
					line = strings.TrimRight(line, "\n")
					switch {
					case strings.HasPrefix(line, "data: "):
						data = strings.TrimPrefix(line, "data: ")
					case line == "":
						evs <- ev{data: data}
					}
				}
			}()
			for i := range events {
				select {
				case e, ok := <-evs:
					if !ok || e.err != nil {
						t.Fatalf("event %d: stream ended: %v", i, e.err)
					}
					if want := fmt.Sprintf("event %d", i); e.data != want {
						t.Fatalf("got %q, want %q", e.data, want)
					}
				case <-time.After(perEvent):
					t.Fatalf("event %d not delivered within %v of being produced: the response is buffered", i, perEvent)
				}
				select {
				case acks <- i:
				case <-time.After(perEvent):
					t.Fatalf("backend did not wait for ack %d", i)
				}
			}
			resp.Body.Close()
			for range evs { // the reader goroutine ends with the body
			}
		})
	}
}
