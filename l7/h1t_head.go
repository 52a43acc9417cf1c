package l7

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// readResponse reads one response head from br, as http.ReadResponse does
// and with the same result (h1t_head_test.go compares the two), but with a
// few allocations instead of one or more per header field: the head is
// copied into one string, header values are substrings of it, common keys
// come from a table, and the Response, its Header and the values' backing
// array are sized once. Its body, when it has one, is rb, which reads from
// br (rb belongs to the caller, usually inside its h1Body: no allocation).
//
// The head must fit in br's buffer; a larger one (rare: it holds cookies
// or long tokens) goes to http.ReadResponse, which reads the same bytes
// since nothing was consumed, bounded by the connection's read limit.
func readResponse(br *bufio.Reader, req *http.Request, rb *respBody, blk *respBlock) (*http.Response, error) {
	// Find the end of the head (an empty line) in the buffer, reading
	// more as needed. The status line and each field line's start are
	// checked as they complete, so that a malformed answer fails at once
	// as it does with http.ReadResponse, not at the header timeout.
	statusEnd, lineStart, end := -1, 0, 0
	for {
		buf, _ := br.Peek(br.Buffered())
		for end == 0 {
			i := bytes.IndexByte(buf[lineStart:], '\n')
			if i < 0 {
				break
			}
			i += lineStart
			line := buf[lineStart:i]
			switch {
			case statusEnd < 0:
				statusEnd = i
				if _, _, _, _, _, err := parseStatusLine(dropCR(line)); err != nil {
					return nil, err
				}
			case len(line) == 0 || len(line) == 1 && line[0] == '\r':
				end = i + 1
			case line[0] == ' ' || line[0] == '\t':
				if lineStart == statusEnd+1 {
					return nil, fmt.Errorf("malformed MIME header initial line: %q", line)
				}
			case bytes.IndexByte(line, ':') < 0:
				return nil, fmt.Errorf("malformed MIME header: missing colon: %q", line)
			}
			lineStart = i + 1
		}
		if end > 0 {
			break
		}
		if len(buf) >= br.Size() {
			return http.ReadResponse(br, req)
		}
		if _, err := br.Peek(len(buf) + 1); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	buf, _ := br.Peek(end)
	head := string(buf)
	br.Discard(end)
	return parseHead(head, statusEnd, br, req, rb, blk)
}

// dropCR removes the CR of a line's CRLF end, as bufio.Reader.ReadLine.
func dropCR[T string | []byte](line T) T {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		return line[:n-1]
	}
	return line
}

// parseStatusLine is http.ReadResponse's reading of "HTTP/1.1 200 OK",
// allocation-free on a []byte line too.
func parseStatusLine[T string | []byte](line T) (proto, status T, code, major, minor int, err error) {
	sp := -1
	for i := 0; i < len(line); i++ {
		if line[i] == ' ' {
			sp = i
			break
		}
	}
	if sp < 0 {
		return proto, status, 0, 0, 0, fmt.Errorf("malformed HTTP response %q", line)
	}
	proto, status = line[:sp], line[sp+1:]
	for len(status) > 0 && status[0] == ' ' {
		status = status[1:]
	}
	codeStr := status
	for i := 0; i < len(status); i++ {
		if status[i] == ' ' {
			codeStr = status[:i]
			break
		}
	}
	code, ok := statusCode(codeStr)
	if !ok {
		return proto, status, 0, 0, 0, fmt.Errorf("malformed HTTP status code %q", codeStr)
	}
	if major, minor, ok = httpVersion(proto); !ok {
		return proto, status, 0, 0, 0, fmt.Errorf("malformed HTTP version %q", proto)
	}
	return proto, status, code, major, minor, nil
}

// statusCode is net/http's: three bytes read by strconv.Atoi, not
// negative; so "+20" is 20 and "-00" is 0.
func statusCode[T string | []byte](s T) (int, bool) {
	if len(s) != 3 {
		return 0, false
	}
	i, neg := 0, false
	if s[0] == '+' || s[0] == '-' {
		i, neg = 1, s[0] == '-'
	}
	n := 0
	for ; i < 3; i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	if neg && n != 0 {
		return 0, false
	}
	return n, true
}

// httpVersion is http.ParseHTTPVersion: "HTTP/" and one digit each.
func httpVersion[T string | []byte](v T) (major, minor int, ok bool) {
	if len(v) != len("HTTP/1.1") || string(v[:5]) != "HTTP/" || v[6] != '.' ||
		v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9' {
		return 0, 0, false
	}
	return int(v[5] - '0'), int(v[7] - '0'), true
}

// trimSpaceTab is net/textproto's trim of a line: spaces and tabs only.
func trimSpaceTab(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// parseHead builds the response from a complete head (its status line ends
// at statusEnd), with net/textproto's field rules and net/http's framing
// rules (readTransfer), then sets up rb for the body.
func parseHead(head string, statusEnd int, br *bufio.Reader, req *http.Request, rb *respBody, blk *respBlock) (*http.Response, error) {
	proto, status, code, major, minor, err := parseStatusLine(dropCR(head[:statusEnd]))
	if err != nil {
		return nil, err
	}
	fields := head[statusEnd+1:]
	n := strings.Count(fields, "\n") - 1 // an upper bound: continuations count too
	hdr := make(http.Header, n)
	// The Response and the values' array are one allocation for the
	// usual handful of fields: blk, the caller's, for a final response
	// (a 1xx one is passed on and dropped), or a new one.
	var resp *http.Response
	var strs []string
	if n <= len(respBlock{}.vals) {
		if blk == nil || code < 200 {
			blk = new(respBlock)
		}
		resp, strs = &blk.resp, blk.vals[:n]
	} else {
		resp, strs = new(http.Response), make([]string, n)
	}
	for p := 0; ; {
		i := p + strings.IndexByte(fields[p:], '\n')
		line := dropCR(fields[p:i])
		if line == "" {
			break
		}
		p = i + 1
		kv := trimSpaceTab(line)
		if fields[p] == ' ' || fields[p] == '\t' {
			// obs-fold: continuation lines are joined by one space, each
			// trimmed (net/textproto's readContinuedLineSlice).
			b := []byte(kv)
			for fields[p] == ' ' || fields[p] == '\t' {
				j := p + strings.IndexByte(fields[p:], '\n')
				b = append(b, ' ')
				b = append(b, trimSpaceTab(dropCR(fields[p:j]))...)
				p = j + 1
			}
			kv = string(b)
		}
		k, v, _ := strings.Cut(kv, ":") // the scan saw the colon
		key, ok := canonicalKey(k)
		if !ok {
			return nil, fmt.Errorf("malformed MIME header line: %q", kv)
		}
		for i := 0; i < len(v); i++ {
			if !validValueByte[v[i]] {
				return nil, fmt.Errorf("malformed MIME header line: %q", kv)
			}
		}
		for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
			v = v[1:]
		}
		if vv, ok := hdr[key]; ok || len(strs) == 0 {
			hdr[key] = append(vv, v)
		} else {
			// One value per key, usually: a slice of one shared array,
			// capped so that an append does not run into the next.
			vv, strs = strs[:1:1], strs[1:]
			vv[0] = v
			hdr[key] = vv
		}
	}
	*resp = http.Response{
		Status: status, StatusCode: code, Proto: proto, ProtoMajor: major, ProtoMinor: minor,
		Header: hdr, Request: req,
	}
	if hp, ok := hdr["Pragma"]; ok && len(hp) > 0 && hp[0] == "no-cache" {
		if _, ok := hdr["Cache-Control"]; !ok {
			hdr["Cache-Control"] = []string{"no-cache"}
		}
	}
	if err := frame(resp, br, rb); err != nil {
		return nil, err
	}
	return resp, nil
}

// respBlock holds a Response and the values of its header fields.
type respBlock struct {
	resp http.Response
	vals [8]string
}

// chunkedTE is the TransferEncoding of every chunked request and
// response; nothing in proxynow modifies it.
var chunkedTE = []string{"chunked"}

// frame is net/http's readTransfer for a response: Transfer-Encoding,
// Content-Length, Connection and Trailer decide the body's framing, the
// response's Close, ContentLength and Trailer, and which fields stay.
func frame(resp *http.Response, br *bufio.Reader, rb *respBody) error {
	hdr, code := resp.Header, resp.StatusCode
	method := "GET"
	if resp.Request != nil {
		method = resp.Request.Method
	}
	closing := shouldClose(resp.ProtoMajor, resp.ProtoMinor, hdr)
	major, minor := resp.ProtoMajor, resp.ProtoMinor
	if major == 0 && minor == 0 {
		major, minor = 1, 1
	}

	chunked := false
	if te, ok := hdr["Transfer-Encoding"]; ok {
		delete(hdr, "Transfer-Encoding")
		// Ignored before HTTP/1.1 (golang.org/issue/12785); else only
		// one "chunked", as net/http and nginx (request smuggling).
		if major > 1 || major == 1 && minor >= 1 {
			if len(te) != 1 {
				return fmt.Errorf("too many transfer encodings: %q", te)
			}
			if !asciiEqualFold(te[0], "chunked") {
				return fmt.Errorf("unsupported transfer encoding: %q", te[0])
			}
			chunked = true
		}
	}

	// net/http's fixLength.
	cls := hdr["Content-Length"]
	if len(cls) > 1 {
		first := textproto.TrimString(cls[0])
		for _, v := range cls[1:] {
			if textproto.TrimString(v) != first {
				return fmt.Errorf("message cannot contain multiple Content-Length headers; got %q", cls)
			}
		}
		cls = []string{first}
		hdr["Content-Length"] = cls
	}
	var n int64
	if len(cls) > 0 {
		var err error
		if n, err = parseContentLength(cls[0]); err != nil {
			return err
		}
	}
	realLength := int64(-1)
	switch {
	case method == http.MethodHead, code/100 == 1, code == http.StatusNoContent, code == http.StatusNotModified:
		realLength = 0
	case chunked:
		delete(hdr, "Content-Length")
	case len(cls) > 0:
		realLength = n
	}
	resp.ContentLength = realLength
	if method == http.MethodHead {
		resp.ContentLength = -1
		if len(cls) > 0 {
			resp.ContentLength = n
		}
	}

	var err error
	if resp.Trailer, err = fixTrailer(hdr, chunked); err != nil {
		return err
	}
	if realLength == -1 && !chunked && bodyAllowedForStatus(code) {
		closing = true // the body ends with the connection
	}

	*rb = respBody{br: br, resp: resp}
	switch {
	case chunked:
		resp.TransferEncoding = chunkedTE
		if method == http.MethodHead || !bodyAllowedForStatus(code) {
			resp.Body = http.NoBody
		} else {
			rb.kind = bodyChunked
			resp.Body = rb
		}
	case realLength == 0:
		resp.Body = http.NoBody
	case realLength > 0:
		rb.kind, rb.n = bodyLength, realLength
		resp.Body = rb
	case closing:
		rb.kind = bodyUntilClose
		resp.Body = rb
	default:
		resp.Body = http.NoBody
	}
	resp.Close = closing
	return nil
}

// shouldClose is net/http's: HTTP/1.0 closes unless kept alive; a later
// version closes on "Connection: close", which it removes.
func shouldClose(major, minor int, hdr http.Header) bool {
	if major < 1 {
		return true
	}
	conv := hdr["Connection"]
	hasClose := httpguts.HeaderValuesContainsToken(conv, "close")
	if major == 1 && minor == 0 {
		return hasClose || !httpguts.HeaderValuesContainsToken(conv, "keep-alive")
	}
	if hasClose {
		delete(hdr, "Connection")
	}
	return hasClose
}

func parseContentLength(cl string) (int64, error) {
	cl = textproto.TrimString(cl)
	if cl == "" {
		return 0, errors.New("invalid empty Content-Length")
	}
	n, err := strconv.ParseUint(cl, 10, 63)
	if err != nil {
		return 0, fmt.Errorf("bad Content-Length %q", cl)
	}
	return int64(n), nil
}

func bodyAllowedForStatus(code int) bool {
	return !(code >= 100 && code <= 199 || code == http.StatusNoContent || code == http.StatusNotModified)
}

// fixTrailer is net/http's: with a chunked body, the announced trailer
// keys (minus the framing ones, an error) become the Trailer's keys and
// the field goes; without one, the field stays and Trailer is nil.
func fixTrailer(hdr http.Header, chunked bool) (http.Header, error) {
	vv, ok := hdr["Trailer"]
	if !ok || !chunked {
		return nil, nil
	}
	delete(hdr, "Trailer")
	var trailer http.Header
	for _, v := range vv {
		for f := range strings.SplitSeq(v, ",") {
			if f = textproto.TrimString(f); f == "" {
				continue
			}
			key := http.CanonicalHeaderKey(f)
			switch key {
			case "Transfer-Encoding", "Trailer", "Content-Length":
				return nil, fmt.Errorf("bad trailer key %q", key)
			}
			if trailer == nil {
				trailer = make(http.Header)
			}
			trailer[key] = nil
		}
	}
	return trailer, nil
}

func asciiEqualFold(s, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := 0; i < len(s); i++ {
		a, b := s[i], t[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}
