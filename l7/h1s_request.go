package l7

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/net/http/httpguts"
)

// Reading a request head into an *http.Request.
//
// The head is copied into one string; the method, target, field values and
// (when canonical already) field names are substrings of it. One struct
// holds the URL, the body and the backing array of the header's value
// slices, so a typical request costs four allocations: that struct, the
// head, the header map and the http.Request.

// requestError is a request the server answers with code and a short text,
// then closes the connection.
type requestError struct {
	code int
	msg  string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(msg string) error { return &requestError{http.StatusBadRequest, msg} }

var errH2Preface = errors.New("HTTP/2 connection preface")

// h1req is what a request allocates besides the head, the header map and,
// when it has one, the body: the http.Request, its context, its URL, the
// Entry's reqInfo (see h1ctx.takeInfo) and vals, which backs the header's
// values for up to 14 fields besides Host. One allocation instead of
// three. 14 fills h1req's size class: its 1008 bytes and the 8-byte header
// the runtime puts on an object over 512 bytes with pointers make 1016 of
// 1024 (TestH1reqSizeClass).
type h1req struct {
	req  http.Request
	ctx  h1ctx
	info reqInfo
	url  url.URL
	vals [14]string
}

// reqKey canonicalizes a request field name. The guard let only tokens
// through; a name canonicalKey does not take is kept as it is, as
// net/textproto keeps it.
func reqKey(name string) string {
	if k, ok := canonicalKey(name); ok {
		return k
	}
	return name
}

// readHead returns the request head (request line to the empty line) as a
// view of br's buffer; the caller discards it once copied. A head larger
// than the buffer is gathered into a new slice. A keep-alive request's
// head that must be read on from the socket gets the header timeout
// first (the first request's wait already ran on it); one that is all in
// the buffer needs none.
func (c *h1conn) readHead(first bool) ([]byte, error) {
	br := c.br
	timed := first || c.s.readHeaderTimeout <= 0
	for {
		b, _ := br.Peek(br.Buffered())
		if !*c.bareLF {
			// Every line so far ended in CRLF (the guard says): the
			// first empty line is the first CRLFCRLF.
			if i := bytes.Index(b, crlfcrlf); i >= 0 {
				return b[:i+4], nil
			}
		} else if i := headEndLF(b); i >= 0 {
			return b[:i], nil
		}
		if !timed {
			c.nc.SetReadDeadline(time.Now().Add(c.s.readHeaderTimeout))
			timed = true
		}
		if len(b) == br.Size() {
			return c.readLongHead()
		}
		if _, err := br.Peek(len(b) + 1); err != nil {
			return nil, err
		}
	}
}

var crlfcrlf = []byte("\r\n\r\n")

// headTooLarge is the answer to a head past the limit, of which head is
// what fits: 414 when the request line has not ended in it, as nginx
// answers a request line longer than its buffers; 431 otherwise.
func headTooLarge(head []byte) error {
	if bytes.IndexByte(head, '\n') < 0 {
		return &requestError{http.StatusRequestURITooLong, "request line too long"}
	}
	return &requestError{http.StatusRequestHeaderFieldsTooLarge, "request header too large"}
}

// headEndLF is the length of the head at the start of b, through its empty
// line, when lines may end in CRLF or a bare LF (the guard let no bare CR
// through); -1 when b holds no empty line yet.
func headEndLF(b []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		switch {
		case i < len(b) && b[i] == '\n':
			return i + 1
		case i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n':
			return i + 2
		}
	}
}

// endsHead reports whether head, gathered line by line, ends with its
// empty line (after CRLF or a bare LF).
func endsHead(head []byte) bool {
	return bytes.HasSuffix(head, []byte("\n\n")) || bytes.HasSuffix(head, []byte("\n\r\n"))
}

// crlfHead is head with every line ending in CRLF: the parser's form.
// Only a head with a bare LF is copied.
func crlfHead(head string) string {
	if strings.Count(head, "\n") == strings.Count(head, "\r\n") {
		return head
	}
	var b strings.Builder
	b.Grow(len(head) + strings.Count(head, "\n"))
	for line := range strings.SplitAfterSeq(head, "\n") {
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		b.WriteString(line)
		b.WriteString("\r\n")
	}
	return strings.TrimSuffix(b.String(), "\r\n") // SplitAfter's empty last piece
}

// readLongHead gathers a head larger than br's buffer, line by line, up to
// the server's limit (431 beyond, 414 if the request line alone is).
func (c *h1conn) readLongHead() ([]byte, error) {
	head := make([]byte, 0, 2*h1sReadBuf)
	for {
		line, err := c.br.ReadSlice('\n')
		if len(head)+len(line) > c.s.maxHead {
			return nil, headTooLarge(head)
		}
		head = append(head, line...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return nil, err
		}
		// The empty line ends the head. Not "a 2-byte slice": a field line
		// of exactly the buffer's size comes as the line, then its CRLF
		// alone — taking that for the end would start a second request in
		// the middle of this one's fields.
		if endsHead(head) {
			return head, nil
		}
	}
}

// readRequest reads the next request head and builds the request.
func (c *h1conn) readRequest(first bool) (*http.Request, *h1body, error) {
	b, err := c.readHead(first)
	if err != nil {
		return nil, nil, err
	}
	if len(b) > c.s.maxHead {
		return nil, nil, headTooLarge(b[:c.s.maxHead])
	}
	long := len(b) > c.br.Buffered() // readLongHead's copy: nothing to discard
	if first && bytes.HasPrefix(b, []byte("PRI * HTTP/2.0\r\n")) {
		return nil, nil, errH2Preface
	}
	head := string(b)
	if !long {
		c.br.Discard(len(b))
	}
	if *c.bareLF {
		head = crlfHead(head)
	}
	return c.parseRequest(head)
}

func (c *h1conn) parseRequest(head string) (*http.Request, *h1body, error) {
	x := new(h1req)
	x.ctx.Context = c.ctx
	x.ctx.peer = c.peer
	x.ctx.info = &x.info
	c.nextCtx = &x.ctx
	r := &x.req
	r.RemoteAddr, r.TLS = c.remote, c.tls

	line, rest, _ := strings.Cut(head, "\r\n")
	method, line, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(line, " ")
	if !ok1 || !ok2 || method == "" || target == "" {
		return nil, nil, badRequest("malformed request line")
	}
	r.Method, r.RequestURI, r.Proto = method, target, proto
	switch proto {
	case "HTTP/1.1":
		r.ProtoMajor, r.ProtoMinor = 1, 1
	case "HTTP/1.0":
		r.ProtoMajor, r.ProtoMinor = 1, 0
	default:
		return nil, nil, &requestError{http.StatusHTTPVersionNotSupported, "unsupported protocol version"}
	}

	// Fields: count them to size the map.
	n := strings.Count(rest, "\r\n") - 1
	h := make(http.Header, max(n, 0))
	vals := x.vals[:]
	var hosts int
	var connTokens []string
	for rest != "\r\n" && rest != "" {
		var fl string
		fl, rest, _ = strings.Cut(rest, "\r\n")
		name, value, ok := strings.Cut(fl, ":")
		if !ok || name == "" {
			return nil, nil, badRequest("malformed header line")
		}
		value = strings.Trim(value, " \t")
		key := reqKey(name)
		switch key {
		case "Host":
			hosts++
			r.Host = value
			continue
		case "Connection":
			connTokens = append(connTokens, value)
		}
		if prior, ok := h[key]; ok {
			h[key] = append(prior, value)
			continue
		}
		if len(vals) == 0 {
			vals = make([]string, 8)
		}
		vals[0] = value
		h[key] = vals[:1:1]
		vals = vals[1:]
	}
	r.Header = h

	if hosts > 1 {
		return nil, nil, badRequest("too many Host headers")
	}
	if hosts == 0 && r.ProtoMinor == 1 && method != http.MethodConnect {
		return nil, nil, badRequest("missing required Host header")
	}
	if !httpguts.ValidHostHeader(r.Host) {
		return nil, nil, badRequest("malformed Host header")
	}
	if err := c.parseTarget(r, x, target); err != nil {
		return nil, nil, err
	}
	if pragma := h["Pragma"]; len(pragma) == 1 && pragma[0] == "no-cache" && h["Cache-Control"] == nil {
		// net/http's fixPragmaCacheControl (RFC 7234 §5.4).
		h["Cache-Control"] = pragma
	}
	if r.ProtoMinor == 0 {
		r.Close = !httpguts.HeaderValuesContainsToken(connTokens, "keep-alive")
	} else {
		r.Close = httpguts.HeaderValuesContainsToken(connTokens, "close")
	}
	b, err := c.framing(r)
	if err != nil {
		return nil, nil, err
	}
	return r, b, nil
}

// parseTarget sets the request's URL (and, for the absolute form, Host).
func (c *h1conn) parseTarget(r *http.Request, x *h1req, target string) error {
	if target[0] == '/' && plainPath(target) {
		// The origin form without escapes, nearly every request: what
		// url.ParseRequestURI would return, without its allocation.
		path, query, hasQuery := strings.Cut(target, "?")
		x.url.Path = path
		x.url.RawQuery = query
		x.url.ForceQuery = hasQuery && query == ""
		r.URL = &x.url
		return nil
	}
	authority := r.Method == http.MethodConnect && target[0] != '/'
	if authority {
		// The authority form, parsed as net/http does (the entry refuses
		// CONNECT anyway).
		target = "http://" + target
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return badRequest("malformed request target")
	}
	if authority {
		u.Scheme = ""
	}
	x.url = *u
	r.URL = &x.url
	if u.Host != "" {
		// RFC 9112 §3.2.2: the absolute form's authority is the host.
		r.Host = u.Host
	}
	return nil
}

// plainPath reports whether target's path (up to any '?') has only bytes
// that url.URL keeps as they are (unreserved, '/' and the sub-delims it
// does not escape in a path; no '%'), so
// that Path is the path as written and RawPath stays empty, exactly as
// url.ParseRequestURI would set them.
func plainPath(target string) bool {
	for i := 0; i < len(target); i++ {
		c := target[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~/$&+,;=:@", c) >= 0:
		case c == '?':
			return true
		default:
			return false
		}
	}
	return true
}

// framing sets the body from Content-Length or chunked Transfer-Encoding
// (the guard allows one of them, well-formed), and the declared trailers.
// A request without a body gets http.NoBody, and the connection's own
// h1body for the server's bookkeeping (nothing else sees it).
func (c *h1conn) framing(r *http.Request) (*h1body, error) {
	var chunked bool
	var remain int64
	if te, ok := r.Header["Transfer-Encoding"]; ok {
		if len(te) != 1 || !strings.EqualFold(te[0], "chunked") || r.ProtoMinor == 0 {
			return nil, &requestError{http.StatusNotImplemented, "unsupported transfer encoding"}
		}
		if _, ok := r.Header["Content-Length"]; ok {
			return nil, badRequest("both Content-Length and Transfer-Encoding")
		}
		delete(r.Header, "Transfer-Encoding")
		r.TransferEncoding = chunkedTE
		r.ContentLength = -1
		chunked = true
		if err := declaredTrailers(r); err != nil {
			return nil, err
		}
	} else if cl, ok := r.Header["Content-Length"]; ok {
		if len(cl) != 1 {
			return nil, badRequest("repeated Content-Length")
		}
		n, err := strconv.ParseInt(strings.TrimSpace(cl[0]), 10, 64)
		if err != nil || n < 0 {
			return nil, badRequest("bad Content-Length")
		}
		r.ContentLength = n
		remain = n
	}
	// net/http's reading of Expect: its first value, searched for the
	// 100-continue token; any other non-empty first value is refused.
	var expect bool
	if e := r.Header["Expect"]; len(e) > 0 {
		if httpguts.HeaderValuesContainsToken(e[:1], "100-continue") {
			expect = r.ContentLength != 0 && r.ProtoMinor == 1
		} else if e[0] != "" {
			return nil, &requestError{http.StatusExpectationFailed, "unsupported Expect"}
		}
	}
	if r.ContentLength == 0 {
		c.nobody = h1body{c: c, req: r, eof: true}
		r.Body = http.NoBody
		return &c.nobody, nil
	}
	b := &h1body{c: c, req: r, chunked: chunked, remain: remain, expect: expect}
	b.owed.Store(expect)
	r.Body = b
	return b, nil
}

// declaredTrailers fills r.Trailer from the Trailer field (as net/http
// does, which also removes the field).
func declaredTrailers(r *http.Request) error {
	vv, ok := r.Header["Trailer"]
	if !ok {
		return nil
	}
	delete(r.Header, "Trailer")
	t := make(http.Header)
	for _, v := range vv {
		for k := range strings.SplitSeq(v, ",") {
			k = http.CanonicalHeaderKey(strings.TrimSpace(k))
			switch k {
			case "":
				continue
			case "Transfer-Encoding", "Trailer", "Content-Length":
				return badRequest("bad trailer key")
			}
			t[k] = nil
		}
	}
	if len(t) > 0 {
		r.Trailer = t
	}
	return nil
}

// requestCtxOffset is the offset of http.Request's unexported ctx field:
// setting it in place saves WithContext's copy of the request. It is found
// by reflection (and checked to be a context.Context), so a Go release
// that changes the struct makes this fall back to WithContext, never
// write the wrong field.
var requestCtxOffset = func() uintptr {
	f, ok := reflect.TypeFor[http.Request]().FieldByName("ctx")
	if !ok || f.Type != reflect.TypeFor[context.Context]() {
		return 0
	}
	return f.Offset
}()

// setRequestContext gives *r the context ctx. *r must be a request no
// one else holds yet.
func setRequestContext(r **http.Request, ctx context.Context) {
	if requestCtxOffset == 0 {
		*r = (*r).WithContext(ctx)
		return
	}
	*(*context.Context)(unsafe.Add(unsafe.Pointer(*r), requestCtxOffset)) = ctx
}
