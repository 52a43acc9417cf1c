package l7

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The last write of a response, which x/net makes after the handler
// returned (h2stall.go), and the per-stream write deadline that bounds it.

// h2Raw is a raw HTTP/2 client connection. Its writes are serialised (a
// PING goroutine writes too); its reads are the test's.
type h2Raw struct {
	c    net.Conn
	fr   *http2.Framer
	mu   sync.Mutex
	stop chan struct{}
	done chan struct{}
}

// dialH2Raw opens a prior-knowledge connection to addr with the given
// settings and keeps it busy: a PING every 50 ms, so that only a stream's
// missing credit, never an idle connection, can hold a response.
func dialH2Raw(t *testing.T, addr string, settings ...http2.Setting) *h2Raw {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(time.Minute))
	r := &h2Raw{c: c, fr: http2.NewFramer(c, c), stop: make(chan struct{}), done: make(chan struct{})}
	r.write(t, func(fr *http2.Framer) error {
		if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
			return err
		}
		return fr.WriteSettings(settings...)
	})
	go func() {
		defer close(r.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-tick.C:
				r.mu.Lock()
				err := r.fr.WritePing(false, [8]byte{'b', 'u', 's', 'y'})
				r.mu.Unlock()
				if err != nil {
					return
				}
			}
		}
	}()
	t.Cleanup(r.close)
	return r
}

func (r *h2Raw) close() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	r.c.Close()
	<-r.done
}

func (r *h2Raw) write(t *testing.T, f func(*http2.Framer) error) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := f(r.fr); err != nil {
		t.Fatal(err)
	}
}

// get opens stream id with GET path.
func (r *h2Raw) get(t *testing.T, id uint32, path string) {
	t.Helper()
	var hb []byte
	enc := hpack.NewEncoder(&byteSink{&hb})
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}, {":path", path}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	r.write(t, func(fr *http2.Framer) error {
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb, EndStream: true, EndHeaders: true})
	})
}

// handlersRunning counts the goroutines in h2Conn.runHandler: a stream's,
// until its response is written whole (or the stream ends).
func handlersRunning() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "l7.(*h2Conn).runHandler(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// awaitNoHandlers fails t unless every runHandler goroutine ends within
// 20 s. There is no event to wait on: it polls.
func awaitNoHandlers(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for n := handlersRunning(); n > 0; n = handlersRunning() {
		if time.Now().After(deadline) {
			t.Fatalf("%d stream goroutines still wait 20 s later", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A small response that the handler never flushed is written by x/net
// after the handler returned. A client that gives no credit at all
// (SETTINGS_INITIAL_WINDOW_SIZE 0) and keeps its connection busy must not
// hold those streams and their goroutines past timeouts.idle: each is
// reset.
func TestH2ServerStarvedSmallResponsesEnd(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "small response\n")
	})
	f := startH2Front(t, h, ServerOptions{IdleTimeout: 300 * time.Millisecond})
	r := dialH2Raw(t, f.plain, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	ids := []uint32{1, 3, 5, 7}
	for _, id := range ids {
		r.get(t, id, "/")
	}
	r.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	reset := map[uint32]bool{}
	for len(reset) < len(ids) {
		fm, err := r.fr.ReadFrame()
		if err != nil {
			t.Fatalf("streams reset: %v of %v; then: %v", reset, ids, err)
		}
		switch fm := fm.(type) {
		case *http2.DataFrame:
			if len(fm.Data()) > 0 {
				t.Fatalf("stream %d: %d bytes of DATA sent without credit", fm.StreamID, len(fm.Data()))
			}
		case *http2.RSTStreamFrame:
			reset[fm.StreamID] = true
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY (%v) after resets of %v", fm.ErrCode, reset)
		}
	}
	awaitNoHandlers(t)
}

// The guard: credit that comes after the handler returned, well within
// timeouts.idle, gets the small response delivered whole.
func TestH2ServerLateCreditDelivered(t *testing.T) {
	const idle = 2 * time.Second
	body := "a small response, written after the handler returned\n"
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) })
	f := startH2Front(t, h, ServerOptions{IdleTimeout: idle})
	r := dialH2Raw(t, f.plain, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	r.get(t, 1, "/")
	if got := readH2Response(t, r, 1, idle/4); got != body {
		t.Fatalf("body %q, want %q", got, body)
	}
}

// A handler that runs longer than timeouts.idle before it answers (a slow
// backend, a long poll) keeps its stream: the sweep moves x/net's write
// deadline on while it runs. Its small answer then reaches a client whose
// credit comes late, within the timeout.
func TestH2ServerSlowHandlerLateCredit(t *testing.T) {
	const idle = time.Second
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * idle) // the scenario: a handler slower than the timeout
		io.WriteString(w, "late\n")
	})
	f := startH2Front(t, h, ServerOptions{IdleTimeout: idle})
	r := dialH2Raw(t, f.plain, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	r.get(t, 1, "/")
	if got := readH2Response(t, r, 1, idle/8); got != "late\n" {
		t.Fatalf("body %q", got)
	}
}

// readH2Response reads stream id's response: once its HEADERS arrive (the
// handler returned: x/net sends them with the first flush), it waits
// delay, gives the stream credit, and returns the body. A reset fails t.
func readH2Response(t *testing.T, r *h2Raw, id uint32, delay time.Duration) string {
	t.Helper()
	var body bytes.Buffer
	for {
		fm, err := r.fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %d body bytes: %v", body.Len(), err)
		}
		switch fm := fm.(type) {
		case *http2.HeadersFrame:
			if fm.StreamEnded() {
				return ""
			}
			time.Sleep(delay) // the scenario: credit comes late
			r.write(t, func(fr *http2.Framer) error { return fr.WriteWindowUpdate(id, 1<<16) })
		case *http2.DataFrame:
			body.Write(fm.Data())
			if fm.StreamEnded() {
				return body.String()
			}
		case *http2.RSTStreamFrame:
			t.Fatalf("stream reset (%v) after %d body bytes", fm.ErrCode, body.Len())
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY (%v) after %d body bytes", fm.ErrCode, body.Len())
		}
	}
}

// timeouts.write longer than timeouts.idle still bounds a whole response:
// the sweep never moves the deadline past the stream's start + write. A
// handler's own write deadline replaces the sweep's.
func TestH2ServerWriteDeadlines(t *testing.T) {
	cases := []struct {
		name  string
		o     ServerOptions
		own   time.Duration // the handler's own deadline; 0: none
		after time.Duration // the stream must not end sooner
	}{
		{name: "write timeout", o: ServerOptions{IdleTimeout: 500 * time.Millisecond, WriteTimeout: 2 * time.Second}, after: 1900 * time.Millisecond},
		{name: "handler's deadline", o: ServerOptions{IdleTimeout: 500 * time.Millisecond}, own: 2 * time.Second, after: 2 * time.Second},
		{name: "handler's deadline before idle", o: ServerOptions{IdleTimeout: time.Minute}, own: 300 * time.Millisecond, after: 300 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ended := make(chan time.Duration, 1)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				start := time.Now()
				if tc.own > 0 {
					if err := http.NewResponseController(w).SetWriteDeadline(start.Add(tc.own)); err != nil {
						t.Errorf("SetWriteDeadline: %v", err)
					}
				}
				io.WriteString(w, "first\n")
				http.NewResponseController(w).Flush()
				<-r.Context().Done() // x/net cancels it as it resets the stream
				ended <- time.Since(start)
			})
			f := startH2Front(t, h, tc.o)
			tr := h2Client(false)
			defer tr.CloseIdleConnections()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", f.url(false, "/"), nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			var se http2.StreamError
			if !errors.As(err, &se) {
				t.Fatalf("body read: %v, want a stream reset", err)
			}
			if d := <-ended; d < tc.after {
				t.Errorf("stream ended after %v, want no sooner than %v", d, tc.after)
			}
		})
	}
}
