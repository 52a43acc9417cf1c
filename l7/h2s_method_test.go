package l7

import (
	"bytes"
	"net/http"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestH2BadMethod400: a :method that is not a token gets 400 from the
// HTTP/2 server itself (its requests carry an h1ctx, which tells the
// Entry the method was checked), and the handler never sees it.
func TestH2BadMethod400(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("handler reached with method %q", r.Method)
	})
	f := startH2Front(t, h, ServerOptions{})
	fr := dialH2(t, f.plain)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, hf := range [][2]string{{":method", "GE T"}, {":scheme", "http"}, {":authority", "x"}, {":path", "/"}} {
		enc.WriteField(hpack.HeaderField{Name: hf[0], Value: hf[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			if s := f.PseudoValue("status"); s != "400" {
				t.Fatalf(":status %q, want 400", s)
			}
			return
		case *http2.RSTStreamFrame:
			t.Fatalf("stream reset (%v), want a 400 response", f.ErrCode)
		}
	}
}
