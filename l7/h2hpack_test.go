package l7

import (
	"io"
	"net/http"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestH2ResponsesNotIndexed: the server's response headers add nothing to
// HPACK's dynamic table. Three responses with the same fields on one
// connection: every field of every block is a literal left out of the
// table or a static-table index, never an index of an earlier response's
// field.
func TestH2ResponsesNotIndexed(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Same", "the same value each time")
		io.WriteString(w, "ok")
	})
	f := startH2Front(t, h, ServerOptions{})
	fr := dialH2(t, f.plain)
	var reqBuf []byte
	henc := hpack.NewEncoder(&byteSink{&reqBuf})
	var sizes []int
	for i := range 3 {
		reqBuf = reqBuf[:0]
		for _, kv := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}, {":path", "/"}} {
			henc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
		}
		stream := uint32(2*i + 1)
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: reqBuf, EndStream: true, EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		for {
			frame, err := fr.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if s, ok := frame.(*http2.SettingsFrame); ok && !s.IsAck() {
				fr.WriteSettingsAck()
				continue
			}
			hf, ok := frame.(*http2.HeadersFrame)
			if !ok || hf.StreamID != stream {
				continue
			}
			block := hf.HeaderBlockFragment()
			if !hf.HeadersEnded() {
				t.Fatal("a response header block in CONTINUATION frames")
			}
			checkNotIndexed(t, block)
			sizes = append(sizes, len(block))
			break
		}
	}
	if len(sizes) != 3 {
		t.Fatalf("%d responses, want 3", len(sizes))
	}
}

// checkNotIndexed walks an HPACK block's representations (RFC 7541 §6):
// an indexed field must be in the static table (index <= 61); a literal
// must not be added to the table; a table size update is allowed.
func checkNotIndexed(t *testing.T, b []byte) {
	t.Helper()
	for len(b) > 0 {
		c := b[0]
		switch {
		case c&0x80 != 0: // indexed field
			idx, rest := hpackInt(t, b, 7)
			if idx > 61 {
				t.Fatalf("a field refers to dynamic table entry %d", idx)
			}
			b = rest
		case c&0xc0 == 0x40: // literal with incremental indexing
			t.Fatalf("a field is added to the dynamic table (representation %#x)", c)
		case c&0xe0 == 0x20: // dynamic table size update
			_, b = hpackInt(t, b, 5)
		default: // literal without indexing / never indexed: 4-bit prefix
			idx, rest := hpackInt(t, b, 4)
			if idx > 61 {
				t.Fatalf("a field's name refers to dynamic table entry %d", idx)
			}
			if idx == 0 {
				rest = hpackString(t, rest)
			}
			b = hpackString(t, rest)
		}
	}
}

func hpackInt(t *testing.T, b []byte, n uint) (uint64, []byte) {
	t.Helper()
	max := uint64(1)<<n - 1
	v := uint64(b[0]) & max
	b = b[1:]
	if v < max {
		return v, b
	}
	for m := uint(0); ; m += 7 {
		if len(b) == 0 {
			t.Fatal("truncated HPACK integer")
		}
		c := b[0]
		b = b[1:]
		v += uint64(c&0x7f) << m
		if c&0x80 == 0 {
			return v, b
		}
	}
}

func hpackString(t *testing.T, b []byte) []byte {
	t.Helper()
	if len(b) == 0 {
		t.Fatal("truncated HPACK string")
	}
	n, rest := hpackInt(t, b, 7)
	if uint64(len(rest)) < n {
		t.Fatal("truncated HPACK string")
	}
	return rest[n:]
}
