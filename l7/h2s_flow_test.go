package l7

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// pingAck sends a PING and waits for its ACK: every frame written before
// it was processed by the serve loop.
func (r *h2sRaw) pingAck(t *testing.T, tag string) {
	t.Helper()
	var d [8]byte
	copy(d[:], tag)
	r.write(t, func(fr *http2.Framer) error { return fr.WritePing(false, d) })
	r.until(t, "PING ACK "+tag, func(f h2sFrame) bool {
		p, ok := f.f.(*http2.PingFrame)
		return ok && p.IsAck() && p.Data == d
	})
}

// TestH2sUnreadUploadCreditReturns: a handler that returns without
// reading a body the client filled the connection's window with must give
// the connection its credit back; else no other stream on the connection
// can ever upload again.
func TestH2sUnreadUploadCreditReturns(t *testing.T) {
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/noread" {
			<-release
			return
		}
		n, err := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d %v", n, err)
	})
	f := startH2Front(t, h, ServerOptions{})
	c := dialH2s(t, f.plain)
	c.req(t, 1, "POST", "/noread", false)
	chunk := make([]byte, 16384)
	for range h2RecvWindow / len(chunk) {
		c.data(t, 1, false, chunk)
	}
	c.pingAck(t, "filled")
	// Drop the credit the server may have sent so far, then let the
	// handler end without reading.
	close(release)
	if code := c.rstOn(t, 1); code != http2.ErrCodeNo {
		t.Fatalf("stream 1 reset with %v, want NO_ERROR", code)
	}
	c.pingAck(t, "after")
	// Another upload of the whole connection window must go through.
	c.req(t, 3, "POST", "/read", false)
	for i := range h2RecvWindow / len(chunk) {
		c.data(t, 3, i == h2RecvWindow/len(chunk)-1, chunk)
	}
	resp := c.response(t, 3)
	if resp.reset || string(resp.body) != fmt.Sprintf("%d <nil>", h2RecvWindow) {
		t.Fatalf("second upload: reset %v (%v), body %q", resp.reset, resp.code, resp.body)
	}
}

// TestH2sUnreadUploadTransport: the same through x/net's client: an
// upload the handler ignores leaves the connection usable for the next
// upload.
func TestH2sUnreadUploadTransport(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/noread" {
			time.Sleep(100 * time.Millisecond) // let the body fill the windows
			io.WriteString(w, "ignored")
			return
		}
		n, err := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d %v", n, err)
	})
	f := startH2Front(t, h, ServerOptions{})
	tr := h2Client(false)
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	for i := range 3 {
		resp, err := cl.Post(f.url(false, "/noread"), "x", bytes.NewReader(make([]byte, 3<<20)))
		if err != nil {
			t.Fatalf("ignored upload %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	resp, err := cl.Post(f.url(false, "/read"), "x", bytes.NewReader(make([]byte, 2<<20)))
	if err != nil {
		t.Fatalf("upload after ignored ones: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("%d <nil>", 2<<20); string(b) != want {
		t.Fatalf("got %q, want %q", b, want)
	}
}

// TestH2sSlowReader: a several-MB upload read slowly arrives whole.
func TestH2sSlowReader(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n int64
		buf := make([]byte, 64<<10)
		for i := 0; ; i++ {
			m, err := r.Body.Read(buf)
			n += int64(m)
			if err != nil {
				fmt.Fprintf(w, "%d %v", n, err)
				return
			}
			if i%8 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	})
	f := startH2Front(t, h, ServerOptions{})
	tr := h2Client(true)
	defer tr.CloseIdleConnections()
	const size = 6 << 20
	resp, err := (&http.Client{Transport: tr, Timeout: time.Minute}).Post(f.url(true, "/"), "x", bytes.NewReader(make([]byte, size)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("%d EOF", size); string(b) != want {
		t.Fatalf("got %q, want %q", b, want)
	}
}

// TestH2sTinyWindow: a client with INITIAL_WINDOW_SIZE 1 gets the body a
// byte a frame as it credits; a SETTINGS raising the window mid-stream
// frees the rest.
func TestH2sTinyWindow(t *testing.T) {
	body := strings.Repeat("abcdefgh", 2048) // 16 KiB: streams, not buffered whole
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body)
	})
	f := startH2Front(t, h, ServerOptions{})
	c := dialH2s(t, f.plain, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1})
	c.req(t, 1, "GET", "/", true)
	var got []byte
	for len(got) < 5 {
		fr := c.until(t, "DATA", func(f h2sFrame) bool { _, ok := f.f.(*http2.DataFrame); return ok })
		if len(fr.data) != 1 {
			t.Fatalf("DATA of %d bytes with a window of 1", len(fr.data))
		}
		got = append(got, fr.data...)
		c.write(t, func(fr *http2.Framer) error { return fr.WriteWindowUpdate(1, 1) })
	}
	// Raise the window by SETTINGS: the rest comes.
	c.write(t, func(fr *http2.Framer) error {
		return fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	})
	resp := c.response(t, 1)
	got = append(got, resp.body...)
	if resp.reset || string(got) != body {
		t.Fatalf("reset %v, %d bytes, want %d", resp.reset, len(got), len(body))
	}
}

// TestH2sNegativeWindow: a SETTINGS shrinking the window below what was
// sent makes it negative (RFC 9113 6.9.2); the stream waits until
// WINDOW_UPDATEs bring it above zero, then resumes.
func TestH2sNegativeWindow(t *testing.T) {
	body := strings.Repeat("x", 40000)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body)
	})
	f := startH2Front(t, h, ServerOptions{})
	c := dialH2s(t, f.plain, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 10000})
	c.req(t, 1, "GET", "/", true)
	n := 0
	for n < 10000 {
		fr := c.until(t, "DATA", func(f h2sFrame) bool { _, ok := f.f.(*http2.DataFrame); return ok })
		n += len(fr.data)
	}
	// The window: 10000 - 10000 = 0; the new setting makes it -5000.
	c.write(t, func(fr *http2.Framer) error {
		return fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 5000})
	})
	c.write(t, func(fr *http2.Framer) error { return fr.WriteWindowUpdate(1, 5000) })
	c.pingAck(t, "neg")
	select {
	case fr := <-c.frames:
		if _, ok := fr.f.(*http2.DataFrame); ok {
			t.Fatalf("DATA of %d bytes sent with a window of 0", len(fr.data))
		}
	case <-time.After(100 * time.Millisecond):
	}
	c.write(t, func(fr *http2.Framer) error { return fr.WriteWindowUpdate(1, 30000) })
	resp := c.response(t, 1)
	if resp.reset || n+len(resp.body) != len(body) {
		t.Fatalf("reset %v, %d bytes in all, want %d", resp.reset, n+len(resp.body), len(body))
	}
}

// TestH2sBigFrames: a client's MAX_FRAME_SIZE above 16384 lets DATA
// frames up to it, never past it.
func TestH2sBigFrames(t *testing.T) {
	body := strings.Repeat("y", 300000)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body)
	})
	f := startH2Front(t, h, ServerOptions{})
	c := dialH2s(t, f.plain,
		http2.Setting{ID: http2.SettingMaxFrameSize, Val: 100000},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	c.write(t, func(fr *http2.Framer) error { return fr.WriteWindowUpdate(0, 1<<20) })
	c.req(t, 1, "GET", "/", true)
	n, biggest := 0, 0
	c.until(t, "the end", func(f h2sFrame) bool {
		d, ok := f.f.(*http2.DataFrame)
		if !ok {
			return false
		}
		n += len(f.data)
		biggest = max(biggest, len(f.data))
		return d.StreamEnded()
	})
	if n != len(body) || biggest > 100000 || biggest <= 16384 {
		t.Fatalf("%d bytes, biggest frame %d; want %d, frames past 16384 up to 100000", n, biggest, len(body))
	}
}

// TestH2sWindowOverflow: WINDOW_UPDATE past 2^31-1 resets the stream
// (FLOW_CONTROL_ERROR), and on the connection ends it with a GOAWAY.
func TestH2sWindowOverflow(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	})
	f := startH2Front(t, h, ServerOptions{})
	c := dialH2s(t, f.plain)
	c.req(t, 1, "GET", "/", true)
	c.write(t, func(fr *http2.Framer) error { return fr.WriteWindowUpdate(1, 1<<31-1) })
	if code := c.rstOn(t, 1); code != http2.ErrCodeFlowControl {
		t.Fatalf("stream overflow: RST %v, want FLOW_CONTROL_ERROR", code)
	}
	c.write(t, func(fr *http2.Framer) error { return fr.WriteWindowUpdate(0, 1<<31-1) })
	g := c.until(t, "GOAWAY", func(f h2sFrame) bool { _, ok := f.f.(*http2.GoAwayFrame); return ok })
	if code := g.f.(*http2.GoAwayFrame).ErrCode; code != http2.ErrCodeFlowControl {
		t.Fatalf("connection overflow: GOAWAY %v, want FLOW_CONTROL_ERROR", code)
	}
}

// TestH2sResetUploadsCreditReturns: uploads the client resets midway,
// their bodies unread, hand the connection's credit back: more than the
// connection's window goes through such streams, then a whole upload.
func TestH2sResetUploadsCreditReturns(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/read" {
			n, err := io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "%d %v", n, err)
			return
		}
		<-r.Context().Done()
	})
	f := startH2Front(t, h, ServerOptions{})
	c := dialH2s(t, f.plain)
	chunk := make([]byte, 16384)
	id := uint32(1)
	for range 3 * h2RecvWindow / (4 * len(chunk)) {
		c.req(t, id, "POST", "/hold", false)
		for range 4 {
			c.data(t, id, false, chunk)
		}
		c.pingAck(t, "sent") // the server holds the bytes, unread
		c.write(t, func(fr *http2.Framer) error { return fr.WriteRSTStream(id, http2.ErrCodeCancel) })
		id += 2
	}
	c.req(t, id, "POST", "/read", false)
	for i := range h2RecvWindow / len(chunk) {
		c.data(t, id, i == h2RecvWindow/len(chunk)-1, chunk)
	}
	if r := c.response(t, id); r.reset || string(r.body) != fmt.Sprintf("%d <nil>", h2RecvWindow) {
		t.Fatalf("upload after the resets: reset %v (%v), body %q", r.reset, r.code, r.body)
	}
}
