package l7

import "math"

// scanner is the guard's streaming check of HTTP/1 request framing: request
// heads, Content-Length and chunked bodies, trailer sections. It keeps a few
// counters and flags, never the bytes, and allocates only to report a
// violation. The rules it enforces are listed in guard.go.
type scanner struct {
	maxHead int
	state   uint8
	n       int    // bytes of the current head, trailer section or chunk line
	sub     int    // position in the current request-line part or field name
	pos     int64  // bytes scanned, for error offsets
	remain  uint64 // Content-Length being parsed, then body or chunk bytes to pass
	digits  uint8  // hex digits of the current chunk size
	field   uint8  // framing-relevant field of the current line (fieldOther...)
	cand    uint8  // bit set of fields whose name still matches the name so far
	vphase  uint8  // value matcher phase
	vi      int8   // value matcher position
	reason  string // why the last step failed

	http10, trailer, hasCL, hasTE bool
	connUpgrade, upgradeOther     bool // Connection has "upgrade"; Upgrade names other than h2c
	// bareLF: a line of a request head on this connection has ended in a
	// bare LF (lineFeed). Never cleared: the HTTP/1 server
	// reads it to know that its CRLF-only fast path no longer applies.
	bareLF bool
}

const (
	stPreface     uint8 = iota // start of the connection: maybe the HTTP/2 preface
	stReqStart                 // first byte of a request line
	stMethod                   // method token
	stTarget                   // request-target
	stVersion                  // HTTP-version
	stReqLF                    // LF ending the request line
	stFieldStart               // start of a field line or of the empty line
	stName                     // field name
	stValue                    // field value
	stFieldLF                  // LF ending a field line
	stEndLF                    // LF ending the head or trailer section
	stBody                     // Content-Length body (bulk)
	stChunkSize                // chunk-size digits
	stChunkExt                 // chunk extensions
	stChunkLF                  // LF ending a chunk-size line
	stChunkData                // chunk data (bulk)
	stChunkCR                  // CR after chunk data
	stChunkDataLF              // LF after chunk data
	stPass                     // not HTTP/1 any more: no checks
)

// inHead reports whether the scanner is inside a request head that has
// begun (its first byte read), not in a body, a trailer or between
// requests.
func (s *scanner) inHead() bool {
	return !s.trailer && s.state >= stMethod && s.state <= stEndLF
}

type scanStep uint8

const (
	stepMore    scanStep = iota
	stepRelease          // a held head or chunk line ended with this byte
	stepFail             // s.reason says why
)

const (
	fieldOther uint8 = iota
	fieldCL
	fieldTE
	fieldConn
	fieldUpgrade
)

// guardFieldNames are the fields the scanner acts on, lower case, by field.
var guardFieldNames = [...]string{fieldCL: "content-length", fieldTE: "transfer-encoding", fieldConn: "connection", fieldUpgrade: "upgrade"}

// guardTchar reports the token characters of RFC 9110 §5.6.2.
var guardTchar = func() (t [256]bool) {
	for _, c := range "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" {
		t[c] = true
	}
	return t
}()

// guardValueByte reports the bytes a field value may hold (RFC 9110 §5.5:
// VCHAR, obs-text, SP, HTAB); guardTargetByte those of a request-target.
var guardValueByte, guardTargetByte = func() (v, t [256]bool) {
	for c := range 256 {
		v[c] = c >= ' ' && c != 0x7f || c == '\t'
		t[c] = c > ' ' && c != 0x7f
	}
	return v, t
}()

func guardLower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func (s *scanner) init(maxHead int) { *s = scanner{maxHead: maxHead, state: stPreface} }

// feed scans b, the next bytes of the connection. Bytes up to a release point
// (the end of a held head or chunk line, or any point in body data) may be
// delivered: rel > 0 means everything held before b plus b[:rel]; rel == 0
// means nothing new. On a violation, rel is the last release point in b, so
// the bytes from there (and any held before b) must never be delivered.
func (s *scanner) feed(b []byte) (rel int, err *GuardError) {
	for i := 0; i < len(b); {
		switch s.state {
		case stPass:
			return len(b), nil
		case stBody, stChunkData:
			k := len(b) - i
			if uint64(k) > s.remain {
				k = int(s.remain)
			}
			i += k
			s.pos += int64(k)
			s.remain -= uint64(k)
			rel = i
			if s.remain == 0 {
				if s.state == stBody {
					s.endMessage()
				} else {
					s.state = stChunkCR
				}
			}
			continue
		}
		if k := s.fast(b[i:]); k > 0 {
			i += k
			continue
		}
		c := b[i]
		i++
		s.pos++
		switch s.step(c) {
		case stepRelease:
			rel = i
		case stepFail:
			return rel, &GuardError{Reason: s.reason, Offset: s.pos - 1}
		}
	}
	return rel, nil
}

func (s *scanner) fail(reason string) scanStep {
	s.reason = reason
	return stepFail
}

// step scans one byte of a head, trailer section or chunk line.
func (s *scanner) step(c byte) scanStep {
	switch s.state {
	case stPreface:
		return s.stepPreface(c)
	case stChunkSize, stChunkExt, stChunkLF, stChunkCR, stChunkDataLF:
		return s.stepChunk(c)
	}
	s.n++
	if s.n > s.maxHead {
		return s.fail("request head or trailer section larger than the limit")
	}
	if c == 0 {
		return s.fail("NUL in request head")
	}
	if c == '\n' && s.state != stReqLF && s.state != stFieldLF && s.state != stEndLF {
		return s.lineFeed()
	}
	switch s.state {
	case stReqStart:
		switch {
		case guardTchar[c]:
			s.state = stMethod
		case c == '\r':
			return s.fail("empty line before the request line")
		default:
			return s.fail("request line: method is not a token")
		}
	case stMethod:
		switch {
		case guardTchar[c]:
		case c == ' ':
			s.state, s.sub = stTarget, 0
		default:
			return s.fail("request line: method is not a token followed by one SP")
		}
	case stTarget:
		switch {
		case c == ' ':
			if s.sub == 0 {
				return s.fail("request line: empty request-target or extra SP")
			}
			s.state, s.sub = stVersion, 0
		case c > ' ' && c != 0x7f:
			s.sub++
		case c == '\r':
			return s.fail("request line: missing HTTP version")
		default:
			return s.fail("request line: control character or HTAB in request-target")
		}
	case stVersion:
		switch {
		case s.sub < 7 && c == "HTTP/1."[s.sub]:
		case s.sub == 7 && (c == '0' || c == '1'):
			s.http10 = c == '0'
		case s.sub == 8 && c == '\r':
			s.state = stReqLF
		default:
			return s.fail("request line: version is not HTTP/1.0 or HTTP/1.1")
		}
		s.sub++
	case stReqLF, stFieldLF, stEndLF:
		if c != '\n' {
			return s.fail("bare CR in request head")
		}
		switch s.state {
		case stEndLF:
			return s.endHead()
		case stFieldLF:
			if r := s.endValue(); r != "" {
				return s.fail(r)
			}
		}
		s.state = stFieldStart
	case stFieldStart:
		switch {
		case c == '\r':
			s.state = stEndLF
		case c == ' ' || c == '\t':
			return s.fail("obs-fold: field line starts with whitespace")
		case guardTchar[c]:
			s.state, s.sub, s.cand = stName, 0, 1<<fieldCL|1<<fieldTE|1<<fieldConn|1<<fieldUpgrade
			s.matchName(c)
		case c == ':':
			return s.fail("empty field name")
		default:
			return s.fail("field name is not a token")
		}
	case stName:
		switch {
		case guardTchar[c]:
			s.matchName(c)
		case c == ':':
			if r := s.beginValue(); r != "" {
				return s.fail(r)
			}
			s.state = stValue
		case c == ' ' || c == '\t':
			return s.fail("whitespace between field name and colon")
		case c == '\r':
			return s.fail("field line without a colon")
		default:
			return s.fail("field name is not a token")
		}
	case stValue:
		switch {
		case c == '\r':
			s.state = stFieldLF
		case c < ' ' && c != '\t' || c == 0x7f:
			return s.fail("control character in field value")
		default:
			if r := s.valueByte(c); r != "" {
				return s.fail(r)
			}
		}
	}
	return stepMore
}

// lineFeed scans an LF without a CR before it in a head or trailer
// section. RFC 9112 §2.2 lets a recipient take it for the end of the
// request line, of a field line or of the head, as net/http and nginx do;
// anywhere else it is refused, and so is a CR without an LF after it.
// The chunked body's framing keeps its CRLFs, as in net/http: chunk-size
// lines and the CRLF after chunk data (stepChunk; RFC errata 7633), and
// the trailer section (net/http waits for its CRLFCRLF).
func (s *scanner) lineFeed() scanStep {
	if s.trailer {
		return s.fail("bare LF line ending in the trailer section")
	}
	switch s.state {
	case stReqStart:
		return s.fail("empty line before the request line")
	case stMethod:
		return s.fail("request line: method is not a token followed by one SP")
	case stTarget:
		return s.fail("request line: missing HTTP version")
	case stVersion:
		if s.sub != 8 {
			return s.fail("request line: version is not HTTP/1.0 or HTTP/1.1")
		}
	case stName:
		return s.fail("field line without a colon")
	case stValue:
		if r := s.endValue(); r != "" {
			return s.fail(r)
		}
	case stFieldStart:
		s.bareLF = true
		return s.endHead()
	}
	s.bareLF = true
	s.state = stFieldStart
	return stepMore
}

// matchName narrows s.cand with the name byte at s.sub.
func (s *scanner) matchName(c byte) {
	if s.cand != 0 {
		lc := guardLower(c)
		for f := fieldCL; f <= fieldUpgrade; f++ {
			if name := guardFieldNames[f]; s.cand&(1<<f) != 0 && (s.sub >= len(name) || name[s.sub] != lc) {
				s.cand &^= 1 << f
			}
		}
	}
	s.sub++
}

// beginValue identifies the field whose name just ended and checks framing
// fields against the head so far.
func (s *scanner) beginValue() string {
	s.field, s.vphase, s.vi = fieldOther, 0, 0
	for f := fieldCL; f <= fieldUpgrade; f++ {
		if s.cand&(1<<f) != 0 && len(guardFieldNames[f]) == s.sub {
			s.field = f
		}
	}
	switch s.field {
	case fieldCL:
		switch {
		case s.trailer:
			return "Content-Length in the trailer section"
		case s.hasTE:
			return "both Content-Length and Transfer-Encoding"
		case s.hasCL:
			return "repeated Content-Length"
		}
		s.hasCL, s.remain = true, 0
	case fieldTE:
		switch {
		case s.trailer:
			return "Transfer-Encoding in the trailer section"
		case s.hasCL:
			return "both Content-Length and Transfer-Encoding"
		case s.hasTE:
			return "repeated Transfer-Encoding"
		case s.http10:
			return "Transfer-Encoding in an HTTP/1.0 request"
		}
		s.hasTE = true
	case fieldConn, fieldUpgrade:
		if s.trailer {
			s.field = fieldOther
		}
	}
	return ""
}

// valueByte checks one byte of a framing field's value (no CR, CTL or NUL).
func (s *scanner) valueByte(c byte) string {
	switch s.field {
	case fieldCL:
		// 1*DIGIT with optional whitespace (OWS) before and after.
		switch {
		case '0' <= c && c <= '9':
			if s.vphase == 2 {
				return "Content-Length: whitespace inside the value"
			}
			s.vphase = 1
			d := uint64(c - '0')
			if s.remain > (math.MaxInt64-d)/10 {
				return "Content-Length above 2^63-1"
			}
			s.remain = s.remain*10 + d
		case c == ' ' || c == '\t':
			if s.vphase == 1 {
				s.vphase = 2
			}
		case c == ',':
			return "Content-Length is a list"
		default:
			return "Content-Length is not a decimal number"
		}
	case fieldTE:
		// At most one SP, then "chunked" in any case, then nothing.
		const te = "chunked"
		switch {
		case c == ' ' && s.vi == 0 && s.vphase == 0:
			s.vphase = 1
		case int(s.vi) < len(te) && guardLower(c) == te[s.vi]:
			s.vi++
		default:
			return `Transfer-Encoding is not exactly "chunked"`
		}
	case fieldConn:
		s.listByte(c, "upgrade")
	case fieldUpgrade:
		s.listByte(c, "h2c")
	}
	return ""
}

// listByte matches the elements of a comma-separated token list against
// target: vphase 0 before an element, 1 in it, 2 in whitespace after it; vi
// counts the target bytes matched, -1 once it cannot match.
func (s *scanner) listByte(c byte, target string) {
	switch {
	case c == ',':
		s.endElement(target)
	case c == ' ' || c == '\t':
		if s.vphase == 1 {
			s.vphase = 2
		}
	default:
		if s.vphase == 2 {
			s.vi = -1
		}
		s.vphase = 1
		if s.vi >= 0 && int(s.vi) < len(target) && guardLower(c) == target[s.vi] {
			s.vi++
		} else {
			s.vi = -1
		}
	}
}

func (s *scanner) endElement(target string) {
	if s.vphase != 0 {
		match := int(s.vi) == len(target)
		if s.field == fieldConn && match {
			s.connUpgrade = true
		}
		if s.field == fieldUpgrade && !match {
			s.upgradeOther = true
		}
	}
	s.vphase, s.vi = 0, 0
}

// endValue finishes a field line.
func (s *scanner) endValue() string {
	switch s.field {
	case fieldCL:
		if s.vphase == 0 {
			return "empty Content-Length"
		}
	case fieldTE:
		if s.vi != 7 {
			return `Transfer-Encoding is not exactly "chunked"`
		}
	case fieldConn:
		s.endElement("upgrade")
	case fieldUpgrade:
		s.endElement("h2c")
	}
	return ""
}

// endHead is the end of a head or trailer section: choose the body framing.
func (s *scanner) endHead() scanStep {
	switch {
	case s.trailer:
		s.endMessage()
	case s.hasTE:
		s.state, s.n, s.digits, s.remain = stChunkSize, 0, 0, 0
	case s.hasCL && s.remain > 0:
		s.state = stBody
	default:
		// No framing: a request without a body (RFC 9112 §6.3).
		s.endMessage()
	}
	return stepRelease
}

// stepChunk scans one byte of a chunk-size line or of the CRLF after data.
func (s *scanner) stepChunk(c byte) scanStep {
	switch s.state {
	case stChunkCR:
		if c != '\r' {
			return s.fail("chunk data not followed by CRLF")
		}
		s.state = stChunkDataLF
		return stepMore
	case stChunkDataLF:
		if c != '\n' {
			return s.fail("chunk data not followed by CRLF")
		}
		s.state, s.n, s.digits = stChunkSize, 0, 0
		return stepMore
	}
	s.n++
	if s.n > guardMaxChunkLine {
		return s.fail("chunk-size line longer than 4096 bytes")
	}
	if c == '\n' && s.state != stChunkLF {
		return s.fail("bare LF in chunk-size line")
	}
	switch s.state {
	case stChunkSize:
		var v byte
		switch {
		case '0' <= c && c <= '9':
			v = c - '0'
		case 'a' <= c && c <= 'f', 'A' <= c && c <= 'F':
			v = c | 0x20 - 'a' + 10
		case s.digits > 0 && c == ';':
			s.state = stChunkExt
			return stepMore
		case s.digits > 0 && c == '\r':
			s.state = stChunkLF
			return stepMore
		default:
			return s.fail("chunk size is not 1*HEXDIG")
		}
		if s.digits == 16 {
			return s.fail("chunk size longer than 16 hex digits")
		}
		s.digits++
		s.remain = s.remain<<4 | uint64(v)
	case stChunkExt:
		switch {
		case c == '\r':
			s.state = stChunkLF
		case c < ' ' && c != '\t' || c == 0x7f:
			return s.fail("control character in chunk extension")
		}
	case stChunkLF:
		if c != '\n' {
			return s.fail("bare CR in chunk-size line")
		}
		if s.remain == 0 {
			// Last chunk: the trailer section follows, held with it.
			s.state, s.trailer, s.n = stFieldStart, true, 0
			return stepMore
		}
		s.state = stChunkData
		return stepRelease
	}
	return stepMore
}
