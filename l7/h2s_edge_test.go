package l7

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestH2sStreamProtocolErrors: frames a stream's state does not allow
// reset that stream (RFC 9113 5.1, 6.9, 8.1) and the connection serves
// on.
func TestH2sStreamProtocolErrors(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	})
	f := startH2Front(t, h, ServerOptions{})
	c := dialH2s(t, f.plain)
	for i, tc := range []struct {
		name string
		send func(id uint32)
		want http2.ErrCode
	}{
		{"data-after-end", func(id uint32) {
			c.req(t, id, "POST", "/", true)
			c.data(t, id, false, []byte("late"))
		}, http2.ErrCodeStreamClosed},
		{"trailers-without-end", func(id uint32) {
			c.req(t, id, "POST", "/", false)
			c.headers(t, id, false, "x-t", "1")
		}, http2.ErrCodeProtocol},
		{"trailers-with-pseudo", func(id uint32) {
			c.req(t, id, "POST", "/", false)
			c.headers(t, id, true, ":path", "/x")
		}, http2.ErrCodeProtocol},
		{"window-update-zero", func(id uint32) {
			c.req(t, id, "GET", "/", true)
			c.write(t, func(fr *http2.Framer) error { return fr.WriteWindowUpdate(id, 0) })
		}, http2.ErrCodeProtocol},
		{"headers-after-end", func(id uint32) {
			c.req(t, id, "GET", "/", true)
			c.headers(t, id, true, "x-t", "1")
		}, http2.ErrCodeStreamClosed},
	} {
		id := uint32(2*i + 1)
		tc.send(id)
		if code := c.rstOn(t, id); code != tc.want {
			t.Errorf("%s: RST %v, want %v", tc.name, code, tc.want)
		}
	}
	c.pingAck(t, "alive")
}

// TestH2sPaddedUpload: padding counts against the windows and its credit
// comes back: an upload of mostly padding, past both windows, arrives.
func TestH2sPaddedUpload(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d %v", n, err)
	})
	f := startH2Front(t, h, ServerOptions{})
	c := dialH2s(t, f.plain)
	c.req(t, 1, "POST", "/", false)
	const frames = 3 * h2RecvWindow / 256
	pad := make([]byte, 250)
	for i := range frames {
		c.write(t, func(fr *http2.Framer) error {
			return fr.WriteDataPadded(1, i == frames-1, []byte("abcd"), pad)
		})
	}
	r := c.response(t, 1)
	if want := fmt.Sprintf("%d <nil>", 4*frames); r.reset || string(r.body) != want {
		t.Fatalf("reset %v (%v), body %q, want %q", r.reset, r.code, r.body, want)
	}
}

// TestH2sResetWhileWaitingCredit: a handler blocked on a window of 0
// gets a write error once the client resets the stream.
func TestH2sResetWhileWaitingCredit(t *testing.T) {
	werr := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 64<<10)
		for {
			if _, err := w.Write(buf); err != nil {
				werr <- err
				return
			}
		}
	})
	f := startH2Front(t, h, ServerOptions{})
	c := dialH2s(t, f.plain, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	c.req(t, 1, "GET", "/", true)
	c.until(t, "the head", func(f h2sFrame) bool { _, ok := f.f.(*http2.MetaHeadersFrame); return ok })
	c.write(t, func(fr *http2.Framer) error { return fr.WriteRSTStream(1, http2.ErrCodeCancel) })
	select {
	case err := <-werr:
		if err == nil {
			t.Fatal("nil error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's write still waits after the reset")
	}
	c.req(t, 3, "GET", "/", true)
	c.write(t, func(fr *http2.Framer) error { return fr.WriteRSTStream(3, http2.ErrCodeCancel) })
	<-werr
}

// TestH2sSettingsWindowOverflow: a SETTINGS_INITIAL_WINDOW_SIZE that
// takes an open stream's window past 2^31-1 is a connection error of
// FLOW_CONTROL_ERROR (RFC 9113 6.9.2).
func TestH2sSettingsWindowOverflow(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	f := startH2Front(t, h, ServerOptions{})
	c := dialH2s(t, f.plain)
	c.req(t, 1, "GET", "/", true)
	c.write(t, func(fr *http2.Framer) error { return fr.WriteWindowUpdate(1, 1<<31-1-65535) })
	c.write(t, func(fr *http2.Framer) error {
		return fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65536})
	})
	g := c.until(t, "GOAWAY", func(f h2sFrame) bool { _, ok := f.f.(*http2.GoAwayFrame); return ok })
	if code := g.f.(*http2.GoAwayFrame).ErrCode; code != http2.ErrCodeFlowControl {
		t.Fatalf("GOAWAY %v, want FLOW_CONTROL_ERROR", code)
	}
}

// TestH2sHeaderTableZero: a client that allows no dynamic table still
// decodes every response head.
func TestH2sHeaderTableZero(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Custom", "value")
		io.WriteString(w, "ok")
	})
	f := startH2Front(t, h, ServerOptions{})
	c := dialH2s(t, f.plain, http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0})
	c.fr.ReadMetaHeaders.SetAllowedMaxDynamicTableSize(0)
	for id := uint32(1); id < 8; id += 2 {
		c.req(t, id, "GET", "/", true)
		if r := c.response(t, id); r.reset || field(r.heads[0], "x-custom") != "value" {
			t.Fatalf("stream %d: %+v", id, r)
		}
	}
}

// TestH2sIdleTimeout: a stream running longer than timeouts.idle keeps
// the connection; once none runs for that long, GOAWAY, then the close.
func TestH2sIdleTimeout(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(400 * time.Millisecond)
		io.WriteString(w, "ok")
	})
	f := startH2Front(t, h, ServerOptions{IdleTimeout: 150 * time.Millisecond})
	c := dialH2s(t, f.plain)
	c.req(t, 1, "GET", "/", true)
	if r := c.response(t, 1); r.reset || string(r.body) != "ok" {
		t.Fatalf("slow stream: %+v", r)
	}
	start := time.Now()
	g := c.until(t, "GOAWAY", func(f h2sFrame) bool { _, ok := f.f.(*http2.GoAwayFrame); return ok })
	if ga := g.f.(*http2.GoAwayFrame); ga.ErrCode != http2.ErrCodeNo || ga.LastStreamID != 1 {
		t.Errorf("GOAWAY %v last %d", ga.ErrCode, ga.LastStreamID)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("GOAWAY %v after the last stream, want about 150ms", d)
	}
	// A stream opened after the GOAWAY is refused, then the connection
	// closes within the linger.
	c.req(t, 3, "GET", "/", true)
	if code := c.rstOn(t, 3); code != http2.ErrCodeRefusedStream {
		t.Errorf("stream after GOAWAY: %v", code)
	}
	select {
	case fr := <-c.frames:
		for fr.err == nil {
			fr = <-c.frames
		}
		if errors.Is(fr.err, io.EOF) {
			return
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not closed 5 s after the GOAWAY")
	}
}
