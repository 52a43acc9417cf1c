package middleware

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/proxynow/proxynow/config"
)

// compress encodes response bodies with the best encoding the client
// accepts (RFC 9110 section 12.5.3), streaming: the body is never held
// whole, only its first MinLength bytes while the decision is pending.
//
// A response is left as it is when it already has a Content-Encoding, is a
// range (206 or Content-Range), says Cache-Control: no-transform (RFC 9111
// section 5.2.2.6), has no body (1xx, 204, 304, HEAD), has a Content-Type
// outside Types, or is shorter than MinLength (known at once from
// Content-Length, else when the handler returns before MinLength bytes).
// A response without Content-Type gets the type net/http would sniff,
// from the buffered bytes, before it is matched.
//
// A Flush before MinLength bytes decides at once and compresses: a
// handler that flushes is streaming (server-sent events, long polls), its
// total length is unknown, and holding its events back to learn it would
// break the stream. Flush flushes the encoder (a sync flush: every byte
// written so far decodes) and then the server's writer.
//
// A compressed response gets Content-Encoding and Vary: Accept-Encoding,
// loses Content-Length and Accept-Ranges (ranges of the identity form do
// not apply to it), and its strong ETag is weakened (RFC 9110 section
// 8.8.1: the bytes differ from the identity representation's). A response
// sent as identity only because of Accept-Encoding gets Vary as well, so
// that a cache does not serve it to clients that accept compression.
//
// Encoders are pooled per middleware and reset per response:
//   - gzip: klauspost/compress at the default level (6).
//   - zstd: SpeedDefault, one goroutine (WithEncoderConcurrency(1): the
//     proxy's parallelism is across responses, and a stream must not
//     leave block goroutines behind), a 1 MiB window (RFC 9659 caps HTTP
//     zstd windows at 8 MiB; 1 MiB bounds the memory a pooled encoder
//     holds while losing little on web-sized bodies).
//   - br: andybalholm/brotli quality 4. Its default (6) suits static
//     assets compressed once. On the fly the CPU per response matters
//     more: over BenchmarkCompress's 1 MiB of JSON on one core, quality 4
//     runs at ~98 MB/s (output 12.0% of input), 5 at ~60 MB/s (9.4%), 6 at
//     ~46 MB/s (9.3%). 4 keeps br within about 3x of gzip's cost; clients
//     that prefer smaller bytes still get zstd first by default.
//
// Upgrades (101) and hijacked connections pass untouched; the writer keeps
// http.Flusher, http.Hijacker and Unwrap.

// Encoding names of Content-Encoding.
const (
	encZstd = "zstd"
	encBr   = "br"
	encGzip = "gzip"
)

// brotliQuality is the brotli level used on the fly (see above).
const brotliQuality = 4

// zstdWindow is the zstd window (see above).
const zstdWindow = 1 << 20

// encoder is what gzip, zstd and brotli writers have in common.
type encoder interface {
	io.WriteCloser
	Flush() error
	Reset(io.Writer)
}

// codec is one configured encoding and its pool of encoders.
type codec struct {
	name string
	hdr  []string // shared Content-Encoding value
	pool sync.Pool
}

func (c *codec) get(w io.Writer) encoder {
	e := c.pool.Get().(encoder)
	e.Reset(w)
	return e
}

func (c *codec) put(e encoder) {
	e.Reset(nil) // drop the ResponseWriter
	c.pool.Put(e)
}

func newCodec(name string) (*codec, error) {
	c := &codec{name: name, hdr: hdValue(name)}
	switch name {
	case encGzip:
		c.pool.New = func() any {
			w, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression) // a valid level: no error
			return w
		}
	case encZstd:
		// Checked once here so that New cannot fail later.
		if _, err := newZstd(); err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		c.pool.New = func() any {
			w, _ := newZstd()
			return w
		}
	case encBr:
		c.pool.New = func() any { return brotli.NewWriterLevel(nil, brotliQuality) }
	default:
		return nil, fmt.Errorf("unknown encoding %q (want zstd, br or gzip)", name)
	}
	return c, nil
}

func newZstd() (*zstd.Encoder, error) {
	return zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(zstdWindow))
}

type compress struct {
	codecs []*codec // in the configured order of preference
	min    int
	types  []string // lower case prefixes
}

var (
	hdVaryAE = hdValue("Accept-Encoding")
)

func newCompress(m *config.Middleware, _ Env) (Middleware, error) {
	c, err := buildCompress(m.Compress)
	if err != nil {
		return nil, fmt.Errorf("compress: %w", err)
	}
	return c.wrap, nil
}

func buildCompress(x *config.Compress) (*compress, error) {
	if x == nil {
		return nil, errors.New("missing block")
	}
	names := x.Encodings
	if len(names) == 0 {
		names = []string{encZstd, encBr, encGzip}
	}
	c := &compress{min: x.MinLength}
	if c.min <= 0 {
		// Zero is the documented default, not "compress everything": a
		// decoded config always carries the default explicitly.
		c.min = config.DefaultCompressMinLength
	}
	for _, n := range names {
		n = strings.ToLower(n)
		if slices.ContainsFunc(c.codecs, func(k *codec) bool { return k.name == n }) {
			continue
		}
		k, err := newCodec(n)
		if err != nil {
			return nil, err
		}
		c.codecs = append(c.codecs, k)
	}
	types := x.Types
	if len(types) == 0 {
		types = []string{"text/", "application/json", "application/javascript", "application/xml", "application/wasm", "image/svg+xml"}
	}
	for _, t := range types {
		c.types = append(c.types, strings.ToLower(strings.TrimSpace(t)))
	}
	return c, nil
}

func (c *compress) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		cw, ww := newCompressWriter(w, c, c.negotiate(r.Header["Accept-Encoding"]))
		defer cw.release()
		next.ServeHTTP(ww, r)
		cw.finish()
	})
}

// negotiate picks the encoding for Accept-Encoding values: the highest
// q-value above 0, the configured order among equals; nil when none is
// acceptable or identity is preferred to all (RFC 9110 section 12.5.3).
// "x-gzip" is gzip (RFC 9110 section 8.4.1.3). It allocates nothing.
func (c *compress) negotiate(values []string) *codec {
	if len(values) == 0 {
		return nil
	}
	var (
		qs       [3]int // per codec: q*1000, -1 when not listed
		star     = -1
		identity = -1
		best     *codec
		bestQ    int
	)
	for i := range qs {
		qs[i] = -1
	}
	for _, v := range values {
		for v != "" {
			var elem string
			elem, v, _ = strings.Cut(v, ",")
			name, params, _ := strings.Cut(elem, ";")
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			q, ok := parseQ(params)
			if !ok {
				continue
			}
			switch {
			case name == "*":
				star = q
			case strings.EqualFold(name, "identity"):
				identity = q
			default:
				if strings.EqualFold(name, "x-gzip") {
					name = encGzip
				}
				for i, k := range c.codecs {
					if i < len(qs) && strings.EqualFold(name, k.name) {
						qs[i] = q
					}
				}
			}
		}
	}
	for i, k := range c.codecs {
		if i >= len(qs) {
			break
		}
		q := qs[i]
		if q < 0 {
			q = star
		}
		if q > bestQ {
			best, bestQ = k, q
		}
	}
	if best == nil {
		return nil
	}
	// Identity is always acceptable; it is preferred only when the client
	// ranks it, explicitly, above every encoding we have.
	if identity > bestQ {
		return nil
	}
	return best
}

// parseQ reads the q parameter among params (";q=0.5;..."), as thousandths.
// No q is 1; a malformed q makes the element ignored.
func parseQ(params string) (int, bool) {
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, v, _ := strings.Cut(p, "=")
		if !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		v = strings.TrimSpace(v)
		// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
		if v == "" || len(v) > 5 || (v[0] != '0' && v[0] != '1') {
			return 0, false
		}
		q := int(v[0]-'0') * 1000
		if len(v) > 1 {
			if v[1] != '.' {
				return 0, false
			}
			scale := 100
			for _, d := range []byte(v[2:]) {
				if d < '0' || d > '9' {
					return 0, false
				}
				q += int(d-'0') * scale
				scale /= 10
			}
		}
		if q > 1000 {
			return 0, false
		}
		return q, true
	}
	return 1000, true
}

// Writer states.
const (
	cwIdle      = iota // no final header yet
	cwBuffering        // header held, body bytes held until min
	cwPass             // everything goes to rw as it is
	cwEncoding         // body goes through enc
)

// compressWriter decides on the final header and the first bytes.
type compressWriter struct {
	rw    http.ResponseWriter
	c     *compress
	codec *codec // nil: identity only
	state int
	code  int
	buf   []byte
	enc   encoder
	err   error
}

var (
	_ http.Flusher  = (*compressWriter)(nil)
	_ http.Hijacker = (*compressWriter)(nil)
)

func (w *compressWriter) Header() http.Header { return w.rw.Header() }

func (w *compressWriter) WriteHeader(code int) {
	if w.state != cwIdle {
		if w.state == cwPass {
			w.rw.WriteHeader(code) // net/http reports the superfluous call
		}
		return
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		w.rw.WriteHeader(code) // interim (103 Early Hints): the final header follows
		return
	}
	w.code = code
	switch n := w.eligible(code); {
	case code == http.StatusNotModified:
		w.notModified()
		w.pass()
	case !n:
		w.pass()
	case w.codec == nil:
		// Identity only because of Accept-Encoding: say so to caches.
		if cl := w.contentLength(); cl < 0 || cl >= int64(w.c.min) {
			addVary(w.rw.Header())
		}
		w.pass()
	default:
		switch cl := w.contentLength(); {
		case cl >= 0 && cl < int64(w.c.min):
			w.pass()
		case cl >= 0 && w.hasType():
			w.start()
		default:
			// Unknown length, or no Content-Type yet to sniff: hold the
			// first bytes.
			w.state = cwBuffering
		}
	}
}

// eligible reports whether the response may be compressed, headers
// considered; Content-Type is matched later when it is missing (sniffed).
func (w *compressWriter) eligible(code int) bool {
	h := w.rw.Header()
	switch {
	case code < 200 || code == http.StatusNoContent || code == http.StatusNotModified,
		code == http.StatusPartialContent,
		len(h["Content-Encoding"]) > 0 && h["Content-Encoding"][0] != "",
		len(h["Content-Range"]) > 0,
		hasToken(h["Cache-Control"], "no-transform"):
		return false
	}
	if ct, ok := h["Content-Type"]; ok {
		return len(ct) > 0 && w.c.typeOK(ct[0])
	}
	return true
}

// hasType reports whether Content-Type was set (possibly to nothing, which
// tells net/http not to sniff).
func (w *compressWriter) hasType() bool {
	_, ok := w.rw.Header()["Content-Type"]
	return ok
}

func (c *compress) typeOK(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.TrimSpace(mt)
	for _, t := range c.types {
		if len(mt) >= len(t) && strings.EqualFold(mt[:len(t)], t) {
			return true
		}
	}
	return false
}

// contentLength is the declared length, -1 when unknown.
func (w *compressWriter) contentLength() int64 {
	v := w.rw.Header()["Content-Length"]
	if len(v) == 0 {
		return -1
	}
	n, err := strconv.ParseInt(v[0], 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

func (w *compressWriter) pass() {
	w.state = cwPass
	w.rw.WriteHeader(w.code)
}

// start writes the compressed response's header and takes an encoder.
func (w *compressWriter) start() {
	h := w.rw.Header()
	if !w.hasType() {
		h["Content-Type"] = hdValue(http.DetectContentType(w.buf))
		if !w.c.typeOK(h["Content-Type"][0]) {
			w.pass()
			return
		}
	}
	h["Content-Encoding"] = w.codec.hdr
	delete(h, "Content-Length")
	delete(h, "Accept-Ranges")
	addVary(h)
	weakenETag(h)
	w.state = cwEncoding
	w.rw.WriteHeader(w.code)
	w.enc = w.codec.get(w.rw)
}

// flushBuf sends what was held, through the encoder or not.
func (w *compressWriter) flushBuf() error {
	if len(w.buf) == 0 {
		return nil
	}
	b := w.buf
	w.buf = nil
	var err error
	if w.state == cwEncoding {
		_, err = w.enc.Write(b)
	} else {
		_, err = w.rw.Write(b)
	}
	return err
}

func (w *compressWriter) Write(p []byte) (int, error) {
	if w.state == cwIdle {
		w.WriteHeader(http.StatusOK)
	}
	switch w.state {
	case cwPass:
		return w.rw.Write(p)
	case cwEncoding:
		if w.err != nil {
			return 0, w.err
		}
		n, err := w.enc.Write(p)
		if err != nil {
			w.err = err
		}
		return n, err
	}
	// Buffering: hold up to min bytes, then decide.
	if len(w.buf)+len(p) < w.c.min {
		if w.buf == nil {
			w.buf = make([]byte, 0, min(w.c.min, 32<<10))
		}
		w.buf = append(w.buf, p...)
		return len(p), nil
	}
	// Enough to decide. Sniffing needs up to 512 first bytes: take them
	// from p when buf holds fewer; the rest of p is not copied.
	if !w.hasType() && len(w.buf) < 512 {
		k := min(len(p), 512-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		n, err := w.decideAndWrite(p[k:])
		if err != nil {
			return n, err
		}
		return n + k, nil
	}
	return w.decideAndWrite(p)
}

// decideAndWrite is Write's slow path: buf plus p reach min.
func (w *compressWriter) decideAndWrite(p []byte) (int, error) {
	w.start()
	if err := w.flushBuf(); err != nil {
		w.err = err
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	return w.Write(p)
}

func (w *compressWriter) decide() {
	switch w.state {
	case cwIdle:
		w.WriteHeader(http.StatusOK)
		if w.state == cwBuffering {
			w.decide()
		}
	case cwBuffering:
		w.start()
		if err := w.flushBuf(); err != nil {
			w.err = err
		}
	}
}

// Flush decides now (a flushing handler is streaming), flushes the
// encoder and then the server's writer.
func (w *compressWriter) Flush() {
	w.decide()
	if w.state == cwEncoding && w.err == nil {
		if err := w.enc.Flush(); err != nil {
			w.err = err
			return
		}
	}
	_ = http.NewResponseController(w.rw).Flush()
}

// Hijack hands the connection over; nothing is written after.
func (w *compressWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.rw).Hijack()
	if err == nil {
		w.state = cwPass
		w.buf = nil
	}
	return c, rw, err
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *compressWriter) Unwrap() http.ResponseWriter { return w.rw }

// finish ends the response after the handler returned.
func (w *compressWriter) finish() {
	switch w.state {
	case cwBuffering:
		// The whole body is shorter than min: send it as it is, with its
		// length, as net/http would have.
		w.state = cwPass
		h := w.rw.Header()
		if !w.hasType() && len(w.buf) > 0 {
			h["Content-Type"] = hdValue(http.DetectContentType(w.buf))
		}
		if _, ok := h["Content-Length"]; !ok {
			h["Content-Length"] = []string{strconv.Itoa(len(w.buf))}
		}
		w.rw.WriteHeader(w.code)
		_ = w.flushBuf()
	case cwEncoding:
		if w.err == nil {
			_ = w.enc.Close()
		}
	}
}

// release returns the encoder, also when the handler panicked.
func (w *compressWriter) release() {
	if w.enc != nil {
		w.codec.put(w.enc)
		w.enc = nil
	}
}

// addVary adds Accept-Encoding to Vary unless it, or "*", is there.
func addVary(h http.Header) {
	v := h["Vary"]
	if hasToken(v, "Accept-Encoding") || hasToken(v, "*") {
		return
	}
	if len(v) == 0 {
		h["Vary"] = hdVaryAE
		return
	}
	h["Vary"] = append(v, "Accept-Encoding")
}

// hasToken reports whether the comma-separated values hold tok (case
// insensitive, parameters ignored).
func hasToken(values []string, tok string) bool {
	for _, v := range values {
		for v != "" {
			var e string
			e, v, _ = strings.Cut(v, ",")
			e, _, _ = strings.Cut(e, "=")
			if strings.EqualFold(strings.TrimSpace(e), tok) {
				return true
			}
		}
	}
	return false
}
