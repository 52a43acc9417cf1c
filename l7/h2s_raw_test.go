package l7

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2sRaw is a raw HTTP/2 client for adversarial tests: the test writes
// any frame it likes; a reader goroutine decodes the server's frames (a
// DATA frame's bytes copied, a header block decoded) onto frames.
type h2sRaw struct {
	c      net.Conn
	fr     *http2.Framer
	mu     sync.Mutex // serialises writes (and the encoder)
	enc    *hpack.Encoder
	hb     []byte
	frames chan h2sFrame
	done   chan struct{}
}

// h2sFrame is a frame the server sent, safe to keep.
type h2sFrame struct {
	f      http2.Frame
	hdr    http2.FrameHeader   // f's, copied before the Framer invalidates it
	data   []byte              // DATA
	fields []hpack.HeaderField // HEADERS
	err    error               // the read that ended the connection
}

func dialH2s(t *testing.T, addr string, settings ...http2.Setting) *h2sRaw {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(time.Minute))
	r := &h2sRaw{c: c, fr: http2.NewFramer(c, c), frames: make(chan h2sFrame, 4096), done: make(chan struct{})}
	r.fr.AllowIllegalWrites = true // the tests' point
	r.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	r.fr.MaxHeaderListSize = 1 << 24
	r.fr.SetMaxReadFrameSize(1 << 24)
	r.enc = hpack.NewEncoder(&byteSink{&r.hb})
	r.write(t, func(fr *http2.Framer) error {
		if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
			return err
		}
		return fr.WriteSettings(settings...)
	})
	go func() {
		defer close(r.done)
		defer close(r.frames)
		for {
			f, err := r.fr.ReadFrame()
			if err != nil {
				r.frames <- h2sFrame{err: err}
				return
			}
			sf := h2sFrame{f: f, hdr: f.Header()}
			switch f := f.(type) {
			case *http2.DataFrame:
				sf.data = append([]byte(nil), f.Data()...)
			case *http2.MetaHeadersFrame:
				sf.fields = append([]hpack.HeaderField(nil), f.Fields...)
			}
			r.frames <- sf
		}
	}()
	t.Cleanup(func() {
		c.Close()
		<-r.done
	})
	return r
}

func (r *h2sRaw) write(t *testing.T, f func(*http2.Framer) error) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := f(r.fr); err != nil {
		t.Fatal(err)
	}
}

// headers opens (or continues) stream id with the given fields, in order.
func (r *h2sRaw) headers(t *testing.T, id uint32, end bool, fields ...string) {
	t.Helper()
	r.mu.Lock()
	r.hb = r.hb[:0]
	for i := 0; i+1 < len(fields); i += 2 {
		r.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	hb := append([]byte(nil), r.hb...)
	r.mu.Unlock()
	r.write(t, func(fr *http2.Framer) error {
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb, EndStream: end, EndHeaders: true})
	})
}

// req opens stream id: method path, plus extra fields.
func (r *h2sRaw) req(t *testing.T, id uint32, method, path string, end bool, extra ...string) {
	t.Helper()
	r.headers(t, id, end, append([]string{":method", method, ":scheme", "http", ":authority", "example.com", ":path", path}, extra...)...)
}

func (r *h2sRaw) data(t *testing.T, id uint32, end bool, p []byte) {
	t.Helper()
	r.write(t, func(fr *http2.Framer) error { return fr.WriteData(id, end, p) })
}

// next returns the server's next frame, failing t after d.
func (r *h2sRaw) next(t *testing.T, d time.Duration) h2sFrame {
	t.Helper()
	select {
	case f, ok := <-r.frames:
		if !ok {
			t.Fatal("connection already ended")
		}
		return f
	case <-time.After(d):
		t.Fatalf("no frame from the server within %v", d)
	}
	return h2sFrame{}
}

// until reads frames until pred holds for one (returned), failing t if
// the connection ends or 10 s pass first.
func (r *h2sRaw) until(t *testing.T, what string, pred func(h2sFrame) bool) h2sFrame {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case f, ok := <-r.frames:
			if !ok || f.err != nil {
				t.Fatalf("waiting for %s: connection ended (%v)", what, f.err)
			}
			if pred(f) {
				return f
			}
		case <-deadline:
			t.Fatalf("waiting for %s: nothing within 10 s", what)
		}
	}
}

// rstOn waits for a RST_STREAM on id and returns its code.
func (r *h2sRaw) rstOn(t *testing.T, id uint32) http2.ErrCode {
	t.Helper()
	f := r.until(t, "RST_STREAM", func(f h2sFrame) bool {
		rf, ok := f.f.(*http2.RSTStreamFrame)
		return ok && rf.StreamID == id
	})
	return f.f.(*http2.RSTStreamFrame).ErrCode
}

// response reads stream id to its end: the final head's fields, the body,
// the trailers, and the RST code if it was reset (else ErrCodeNo, ok).
type h2sResp struct {
	heads    [][]hpack.HeaderField // every head, 1xx ones first
	body     []byte
	trailers []hpack.HeaderField
	reset    bool
	code     http2.ErrCode
}

func (r *h2sRaw) response(t *testing.T, id uint32) h2sResp {
	t.Helper()
	return r.responses(t, id)[id]
}

// responses reads the streams ids to their ends, in whatever order
// their frames interleave.
func (r *h2sRaw) responses(t *testing.T, ids ...uint32) map[uint32]h2sResp {
	t.Helper()
	resps := make(map[uint32]h2sResp, len(ids))
	open := make(map[uint32]bool, len(ids))
	for _, id := range ids {
		open[id] = true
	}
	r.until(t, "the responses' ends", func(f h2sFrame) bool {
		id := f.hdr.StreamID
		if !open[id] {
			return false
		}
		resp := resps[id]
		end := false
		switch ff := f.f.(type) {
		case *http2.MetaHeadersFrame:
			if len(ff.PseudoFields()) == 0 && len(resp.heads) > 0 {
				resp.trailers = f.fields
			} else {
				resp.heads = append(resp.heads, f.fields)
			}
			end = ff.StreamEnded()
		case *http2.DataFrame:
			resp.body = append(resp.body, f.data...)
			end = ff.StreamEnded()
		case *http2.RSTStreamFrame:
			resp.reset, resp.code = true, ff.ErrCode
			end = true
		}
		resps[id] = resp
		if end {
			delete(open, id)
		}
		return len(open) == 0
	})
	return resps
}

// field returns the value of name in fs ("" if absent).
func field(fs []hpack.HeaderField, name string) string {
	for _, f := range fs {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

func (r h2sResp) status() string {
	if len(r.heads) == 0 {
		return ""
	}
	return field(r.heads[len(r.heads)-1], ":status")
}
