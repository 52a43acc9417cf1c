package l7

import (
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/http/httpguts"
)

// The outbound request.
//
// net/http/httputil.ReverseProxy deep-clones the inbound request (URL,
// header map and values), deletes the hop-by-hop and forwarding headers from
// the clone, then lets a Rewrite hook add its own: a dozen allocations and a
// rehash per request. The proxy builds the outbound request once instead:
// one struct holds the request, its URL and the body wrapper, and the
// headers are copied in a single pass that skips what must not be forwarded
// into a map sized for them, sharing the (immutable) value strings.

// outbound is everything the proxy allocates for one request's outbound
// side, in one allocation. It goes back to outbounds only when every try
// of the request went through the HTTP/1 fast path (h1Transport.fast),
// which is done with the request when its response body is: any other
// transport may still hold the request after the handler returned
// (golang.org/issue/46866: writing a body the backend did not wait for;
// HTTP/2's stream writer).
type outbound struct {
	req  http.Request
	url  url.URL
	body proxyBody
	// vals backs the outbound header's values for a typical request, so
	// that only an unusually large header block needs a second array.
	vals [12]string
	// hdr is the header map of the request before, cleared for reuse.
	hdr http.Header
	// valid: buildHeader found every field valid as it is (validField).
	valid bool
}

var outbounds = sync.Pool{New: func() any { return new(outbound) }}

// release returns o to outbounds, dropping what it references.
func (o *outbound) release() {
	h := o.hdr
	clear(h)
	*o = outbound{hdr: h}
	outbounds.Put(o)
}

// dropHeader reports the fields never copied from the inbound request: the RFC 9110 §7.6.1
// hop-by-hop fields (and the legacy ones ReverseProxy also strips),
// HTTP2-Settings (only meaningful with an h2c upgrade, which is never
// forwarded), and the fields proxynow sets itself: forwarding headers (a
// trusted peer's values are read from the inbound request and appended
// to), Via and X-Request-Id.
func dropHeader(k string) bool {
	if isHopHeader(k) {
		return true
	}
	switch k {
	case "Http2-Settings",
		"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		"Via", "X-Request-Id":
		return true
	}
	return false
}

// isHopHeader reports whether key is a hop-by-hop field (RFC 9110 §7.6.1),
// removed from requests (dropHeader) and responses (copyEndToEnd) with the
// fields a Connection header names.
func isHopHeader(key string) bool {
	switch key {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// addedHeaders bounds how many fields buildHeader adds to the copied ones.
const addedHeaders = 10

// buildHeader returns the outbound header: in's fields minus dropHeader's and
// minus the fields in's Connection header names (RFC 9110 §7.6.1), then the
// fields proxynow adds. Values are shared with in (strings are immutable;
// the slices are new, so appending to one never writes into in).
func (o *outbound) buildHeader(in *http.Request, ri *reqInfo, upType string) http.Header {
	ih := in.Header
	conn := ih["Connection"]
	keep := func(k string, vv []string) bool {
		return len(vv) > 0 && !dropHeader(k) && (len(conn) == 0 || !namedIn(conn, k))
	}
	// Sizing the map exactly matters: a map that fits one group (8
	// fields, the usual case) is a third of the bytes of the next size.
	nk, nv := 0, addedHeaders
	for k, vv := range ih {
		if keep(k, vv) {
			nk++
			nv += len(vv)
		}
	}
	backing := o.vals[:]
	if nv > len(backing) {
		backing = make([]string, nv)
	}
	h := o.hdr
	if h == nil {
		h = make(http.Header, nk+added(in, ri, upType))
		o.hdr = h
	}
	// valid: every field is one an HTTP/1 request may carry as it is
	// (h1Transport.fast's check, made here on the fields from in as they
	// are copied, on the ones built from in's values below, and known of
	// the rest, which proxynow builds from constants and checked values).
	valid := true
	for k, vv := range ih {
		if !keep(k, vv) {
			continue
		}
		valid = valid && validField(k, vv)
		n := copy(backing, vv)
		h[k] = backing[:n:n]
		backing = backing[n:]
	}
	add := func(k, v string) {
		backing[0] = v
		h[k] = backing[:1:1]
		backing = backing[1:]
	}
	// Issue 21096 (ReverseProxy): tell a backend that the client accepts
	// trailers, which the proxy forwards.
	if httpguts.HeaderValuesContainsToken(ih["Te"], "trailers") {
		add("Te", "trailers")
	}
	if upType != "" {
		add("Connection", "Upgrade")
		add("Upgrade", upType)
	}
	if ri != nil {
		// The request id is one Entry generated (hex) or took from a
		// trusted peer after validRequestID: printable, no space.
		valid = setForwarded(in, h, ri, add) && valid
		add("X-Request-Id", ri.requestID)
	}
	if _, ok := h["User-Agent"]; !ok {
		// An empty value keeps the transport from sending Go's own.
		add("User-Agent", "")
	}
	o.valid = valid
	return h
}

// validField is h1Transport.fast's check of one field: a token name and
// values without control bytes other than tab.
func validField(k string, vv []string) bool {
	if !httpguts.ValidHeaderFieldName(k) {
		return false
	}
	for _, v := range vv {
		if !httpguts.ValidHeaderFieldValue(v) {
			return false
		}
	}
	return true
}

// added is how many fields buildHeader adds.
func added(in *http.Request, ri *reqInfo, upType string) int {
	n := 0
	if _, ok := in.Header["User-Agent"]; !ok {
		n++
	}
	if upType != "" {
		n += 2
	}
	if ri != nil {
		n += 6 // X-Forwarded-For/Proto/Host, Forwarded, Via, X-Request-Id
	}
	if _, ok := in.Header["Te"]; ok {
		n++
	}
	return n
}

// namedIn reports whether a Connection header names field k (already
// canonical); tokens are compared case-insensitively, so nothing is
// canonicalised (no allocation).
func namedIn(conn []string, k string) bool {
	for _, v := range conn {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(tok), k) {
				return true
			}
		}
	}
	return false
}

// upgradeType is the protocol a request asks to switch to: its Upgrade
// value when Connection has the "upgrade" token.
func upgradeType(h http.Header) string {
	if !httpguts.HeaderValuesContainsToken(h["Connection"], "Upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

// isPrint reports whether s is printable ASCII (an upgrade token must be).
func isPrint(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// setForwarded sets X-Forwarded-For/Proto/Host, Forwarded (RFC 7239) and
// Via. A trusted peer's forwarding headers are kept and appended to; anyone
// else's were not copied, so they start afresh. A client cannot remove them:
// they are read from in, whatever its Connection header names.
//
// It reports whether every value it set is a valid field value: those
// taken from in (a trusted peer's fields, Via, the Host as
// X-Forwarded-Host) are checked; the rest are valid as built (an address,
// constants, the Host as a quoted-string with control bytes replaced).
func setForwarded(in *http.Request, h http.Header, ri *reqInfo, add func(k, v string)) (valid bool) {
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	fwd := forwardedElem(ri.peer, proto, in.Host)
	peer := forwardedNode(fwd, ri.peer)
	// A zone (an interface name) may hold control bytes; Forwarded
	// escapes them, X-Forwarded-For has the address as it is.
	valid = ri.peer.Zone() == "" || httpguts.ValidHeaderFieldValue(peer)
	xfp, xfh := proto, in.Host
	if ri.trusted {
		if prior := in.Header["X-Forwarded-For"]; len(prior) > 0 {
			valid = valid && validField("X-Forwarded-For", prior)
			peer = strings.Join(prior, ", ") + ", " + peer
		}
		if v := in.Header["Forwarded"]; len(v) > 0 {
			valid = valid && validField("Forwarded", v)
			fwd = strings.Join(v, ", ") + ", " + fwd
		}
		if v := in.Header["X-Forwarded-Proto"]; len(v) > 0 && v[0] != "" {
			valid = valid && validField("X-Forwarded-Proto", v)
			h["X-Forwarded-Proto"] = v
			xfp = ""
		}
		if v := in.Header["X-Forwarded-Host"]; len(v) > 0 && v[0] != "" {
			valid = valid && validField("X-Forwarded-Host", v)
			h["X-Forwarded-Host"] = v
			xfh = ""
		}
	}
	add("X-Forwarded-For", peer)
	add("Forwarded", fwd)
	if xfp != "" {
		add("X-Forwarded-Proto", xfp)
	}
	if xfh != "" {
		valid = valid && httpguts.ValidHeaderFieldValue(xfh)
		add("X-Forwarded-Host", xfh)
	}
	var via string
	switch {
	case in.ProtoMajor == 1 && in.ProtoMinor == 1:
		via = "1.1 proxynow"
	case in.ProtoMajor == 2:
		via = "2 proxynow"
	case in.ProtoMajor == 3:
		via = "3 proxynow"
	case in.ProtoMajor >= 2:
		via = strconv.Itoa(in.ProtoMajor) + " proxynow"
	default:
		via = strconv.Itoa(in.ProtoMajor) + "." + strconv.Itoa(in.ProtoMinor) + " proxynow"
	}
	if prior := in.Header["Via"]; len(prior) > 0 {
		valid = valid && validField("Via", prior)
		via = strings.Join(prior, ", ") + ", " + via
	}
	add("Via", via)
	return valid
}

// forwardedElem is one RFC 7239 element; IPv6 nodes are quoted and
// bracketed (§6), the host is a quoted-string when it needs to be.
func forwardedElem(peer netip.Addr, proto, host string) string {
	var buf [128]byte
	b := append(buf[:0], "for="...)
	switch {
	case !peer.IsValid():
		b = append(b, "unknown"...) // RFC 7239 §6.3: an unknown node
	case peer.Is6() && peer.Zone() != "":
		// The zone, an interface name, may hold '"' or '\\'.
		var a [64]byte
		b = append(b, '"', '[')
		b = appendQuotedText(b, peer.AppendTo(a[:0]))
		b = append(b, ']', '"')
	case peer.Is6():
		b = append(b, `"[`...)
		b = peer.AppendTo(b)
		b = append(b, `]"`...)
	default:
		b = peer.AppendTo(b)
	}
	b = append(b, ";proto="...)
	b = append(b, proto...)
	if host != "" {
		b = append(b, ";host="...)
		b = appendQuoted(b, host)
	}
	return string(b)
}

// forwardedNode is the peer's address in fwd, forwardedElem's element for
// it: X-Forwarded-For's value shares the element's bytes (one allocation
// per request fewer).
func forwardedNode(fwd string, peer netip.Addr) string {
	if !peer.IsValid() {
		return "unknown"
	}
	if peer.Is6() {
		if peer.Zone() != "" {
			// A zone is an interface name, which may hold ']' (Linux
			// refuses only '/', ':' and white space): no byte ends it.
			return peer.String()
		}
		end := strings.IndexByte(fwd, ']')
		return fwd[len(`for="[`):end]
	}
	// An IPv4 address's text holds no ';' (and it has no zone).
	end := strings.IndexByte(fwd, ';')
	return fwd[len("for="):end]
}

// appendQuoted appends s as an RFC 9110 quoted-string: '"' and '\'
// escaped, other bytes (the Host value passed the server's checks: no
// controls) as they are. strconv.AppendQuote did the same for a valid host
// at several times the cost (a Unicode table lookup per rune).
func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendQuotedText(b, s)
	return append(b, '"')
}

// appendQuotedText is the inside of appendQuoted's quoted-string.
func appendQuotedText[T string | []byte](b []byte, s T) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < ' ' || c == 0x7f:
			b = append(b, ' ') // cannot occur in a checked Host; never raw
		default:
			b = append(b, c)
		}
	}
	return b
}

// cleanQuery is ReverseProxy's cleanQueryParams: a query that Go's own
// parser would read differently from a backend (a ";" separator, a bad
// percent escape) is re-encoded from what Go parses, so that the backend
// and any query matcher here agree. Almost every query passes unchanged.
//
// Before that, the bytes a request-target cannot hold are percent-encoded
// (escapeTargetBytes): an HTTP/2 or HTTP/3 :path may carry a space (x/net
// accepts it), which written as it is would give an HTTP/1 backend a
// request line it may read differently.
func cleanQuery(s string) string {
	s = escapeTargetBytes(s)
	const maxParams = 10000
	if strings.Count(s, "&")+1 > maxParams {
		return reencodeQuery(s)
	}
	for i := 0; i < len(s); {
		switch s[i] {
		case ';':
			return reencodeQuery(s)
		case '%':
			if i+2 >= len(s) || !ishex(s[i+1]) || !ishex(s[i+2]) {
				return reencodeQuery(s)
			}
			i += 3
		default:
			i++
		}
	}
	return s
}

// escapeTargetBytes percent-encodes white space and the other control
// bytes, DEL and '#' (which would start a fragment) in s.
func escapeTargetBytes(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if badTargetByte(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		if c := s[i]; badTargetByte(c) {
			b = append(b, '%', hex[c>>4], hex[c&15])
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}

func badTargetByte(c byte) bool { return c <= ' ' || c == 0x7f || c == '#' }

func reencodeQuery(s string) string {
	v, _ := url.ParseQuery(s)
	return v.Encode()
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
