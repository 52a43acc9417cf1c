package middleware

import (
	"errors"
	"net/http"

	"github.com/quic-go/quic-go/http3"
)

// The compress middleware's writer as each server's writer needs it
// (extras.go).

var (
	_ h2Writer = (*compressWriterH2)(nil)
	_ h3Writer = (*compressWriterH3)(nil)
)

// compressWriter with the optional interfaces of each Kind (extras.go).
type (
	compressWriterNotify struct {
		compressWriter
		NotifyExtra
	}
	compressWriterH2 struct {
		compressWriter
		H2Extra
	}
	compressWriterH3 struct {
		compressWriter
		H3Extra
	}
)

// newCompressWriter wraps rw: the wrapper, and the writer to hand down,
// which has rw's optional interfaces.
func newCompressWriter(rw http.ResponseWriter, c *compress, codec *codec) (*compressWriter, http.ResponseWriter) {
	cw := compressWriter{rw: rw, c: c, codec: codec}
	switch KindOf(rw) {
	case KindNotify:
		v := &compressWriterNotify{cw, NotifyExtra{rw}}
		return &v.compressWriter, v
	case KindH2:
		v := &compressWriterH2{cw, H2Extra{rw}}
		return &v.compressWriter, v
	case KindH3:
		v := &compressWriterH3{compressWriter: cw}
		v.H3Extra = H3Extra{In: rw, Owner: &v.compressWriter}
		return &v.compressWriter, v
	}
	v := &cw
	return v, v
}

// errStreamBody refuses an HTTP/3 stream take-over after body bytes that
// this middleware still holds (quic-go would refuse it had they gone on).
var errStreamBody = errors.New("compress: the stream cannot be taken over after the response body was written")

// TakeStream hands the HTTP/3 stream over like Hijack. A header held back
// (the handler wrote it, no body yet) goes on first, uncompressed: taking
// the stream sends the header written before.
func (w *compressWriter) TakeStream(in http3.HTTPStreamer) (*http3.Stream, error) {
	if w.state == cwBuffering {
		if len(w.buf) > 0 {
			return nil, errStreamBody
		}
		w.pass()
	}
	s, err := in.HTTPStream()
	if err == nil {
		w.state = cwPass
		w.buf = nil
	}
	return s, err
}
