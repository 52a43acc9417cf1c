package l7

import (
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/net/http2"
)

// TestH2sMaxStreams: a stream past MAX_CONCURRENT_STREAMS is refused
// with REFUSED_STREAM; once one ends, a new one is served.
func TestH2sMaxStreams(t *testing.T) {
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			<-release
		}
		io.WriteString(w, "ok")
	})
	f := startH2Front(t, h, ServerOptions{MaxConcurrentStreams: 2})
	c := dialH2s(t, f.plain)
	c.req(t, 1, "GET", "/hold", true)
	c.req(t, 3, "GET", "/hold", true)
	c.req(t, 5, "GET", "/", true)
	if code := c.rstOn(t, 5); code != http2.ErrCodeRefusedStream {
		t.Fatalf("third stream: RST %v, want REFUSED_STREAM", code)
	}
	close(release)
	for id, r := range c.responses(t, 1, 3) {
		if r.reset || string(r.body) != "ok" {
			t.Errorf("stream %d: %+v", id, r)
		}
	}
	c.req(t, 7, "GET", "/", true)
	if r := c.response(t, 7); r.reset || string(r.body) != "ok" {
		t.Errorf("stream 7: %+v", r)
	}
}

// TestH2sClientGoAway: after the client's GOAWAY the streams open finish
// and the server closes the connection.
func TestH2sClientGoAway(t *testing.T) {
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "ok")
	})
	f := startH2Front(t, h, ServerOptions{})
	c := dialH2s(t, f.plain)
	c.req(t, 1, "GET", "/", true)
	c.pingAck(t, "open")
	c.write(t, func(fr *http2.Framer) error { return fr.WriteGoAway(0, http2.ErrCodeNo, nil) })
	c.pingAck(t, "goaway")
	close(release)
	if r := c.response(t, 1); r.reset || string(r.body) != "ok" {
		t.Errorf("stream 1: %+v", r)
	}
	for {
		select {
		case fr, ok := <-c.frames:
			if !ok || fr.err != nil {
				return // closed
			}
		case <-time.After(10 * time.Second):
			t.Fatal("connection still open 10 s after the client's GOAWAY and the last stream")
		}
	}
}

// TestH2sShutdownRefusesNew: with Shutdown under way, a stream in flight
// finishes, a stream opened after the GOAWAY is refused (REFUSED_STREAM,
// safe to retry), and the GOAWAY names the last stream served.
func TestH2sShutdownRefusesNew(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
		io.WriteString(w, "ok")
	})
	f := startH2Front(t, h, ServerOptions{})
	c := dialH2s(t, f.plain)
	c.req(t, 1, "GET", "/slow", true)
	<-entered
	shut := make(chan error, 1)
	go func() { shut <- f.srv.Shutdown(context.Background()) }()
	g := c.until(t, "GOAWAY", func(f h2sFrame) bool { _, ok := f.f.(*http2.GoAwayFrame); return ok })
	if ga := g.f.(*http2.GoAwayFrame); ga.LastStreamID != 1 || ga.ErrCode != http2.ErrCodeNo {
		t.Errorf("GOAWAY last %d code %v, want 1 NO_ERROR", ga.LastStreamID, ga.ErrCode)
	}
	c.req(t, 3, "GET", "/", true)
	if code := c.rstOn(t, 3); code != http2.ErrCodeRefusedStream {
		t.Errorf("stream after GOAWAY: RST %v, want REFUSED_STREAM", code)
	}
	close(release)
	if r := c.response(t, 1); r.reset || string(r.body) != "ok" {
		t.Errorf("stream in flight: %+v", r)
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown still waits 10 s after the last stream")
	}
}

// TestH2sCloseDuringTraffic: Close with downloads, uploads and waiting
// handlers in flight ends them all (goleak in TestMain checks nothing is
// left), and the clients see errors, not hangs.
func TestH2sCloseDuringTraffic(t *testing.T) {
	started := make(chan struct{}, 64)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		switch r.URL.Path {
		case "/down":
			buf := make([]byte, 32<<10)
			for {
				if _, err := w.Write(buf); err != nil {
					return
				}
			}
		case "/up":
			io.Copy(io.Discard, r.Body)
		default:
			<-r.Context().Done()
		}
	})
	f := startH2Front(t, h, ServerOptions{})
	tr := h2Client(false)
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for i := range 30 {
		path := []string{"/down", "/up", "/wait"}[i%3]
		wg.Add(1)
		go func() {
			defer wg.Done()
			var body io.Reader
			if path == "/up" {
				body = &endlessReader{}
			}
			req, _ := http.NewRequest("POST", f.url(false, path), body)
			resp, err := cl.Do(req)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			errs <- err
		}()
	}
	for range 30 {
		<-started
	}
	f.srv.Close()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err == nil {
			t.Error("a request ended cleanly across Close")
		}
	}
}

type endlessReader struct{}

func (*endlessReader) Read(p []byte) (int, error) { return len(p), nil }

// TestH2sDisconnectIsNotRapidReset: a client that goes away with more
// streams open than the reset budget's burst did not reset them: the
// connection's end cancels their handlers, which must not count as rapid
// reset (nor log it).
func TestH2sDisconnectIsNotRapidReset(t *testing.T) {
	const streams = h2ResetBurst + 40
	entered := make(chan struct{}, streams)
	var running sync.WaitGroup
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer running.Done()
		entered <- struct{}{}
		<-r.Context().Done()
	})
	closes := prometheus.NewCounter(prometheus.CounterOpts{Name: "closes"})
	f := startH2Front(t, h, ServerOptions{ResetCloses: closes, MaxConcurrentStreams: streams})
	c := dialH2s(t, f.plain)
	running.Add(streams)
	for i := range streams {
		c.req(t, uint32(2*i+1), "GET", "/", true)
	}
	for range streams {
		<-entered
	}
	c.c.Close()
	running.Wait()
	awaitNoHandlers(t) // streamDone runs after the handler returns
	if n := testutil.ToFloat64(closes); n != 0 {
		t.Errorf("a plain disconnect counted %v rapid-reset closes", n)
	}
}
