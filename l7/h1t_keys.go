package l7

import (
	"net/textproto"

	"golang.org/x/net/http/httpguts"
)

// canonicalKey is net/textproto's canonicalMIMEHeaderKey for a field name
// of a request or response head: token bytes are canonicalized ("content-type" ->
// "Content-Type"); a name with a space is kept as it is (net/textproto
// accepts it, golang.org/issue/34540); any other byte, or an empty name,
// is invalid. It allocates only for a name neither canonical already nor
// in commonKeys.
func canonicalKey(k string) (string, bool) {
	if k == "" {
		return "", false
	}
	canon, upper := true, true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !tokenByte[c] {
			if c != ' ' {
				return "", false
			}
			return canonicalKeyWithSpace(k)
		}
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			canon = false
		}
		upper = c == '-'
	}
	if canon {
		return k, true
	}
	var a [64]byte
	if len(k) > len(a) {
		return textproto.CanonicalMIMEHeaderKey(k), true
	}
	b := a[:len(k)]
	upper = true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
		upper = c == '-'
	}
	if v, ok := commonKeys[string(b)]; ok { // no allocation to look up
		return v, true
	}
	return string(b), true
}

// canonicalKeyWithSpace checks the rest of a name that holds a space.
func canonicalKeyWithSpace(k string) (string, bool) {
	for i := 0; i < len(k); i++ {
		if !tokenByte[k[i]] && k[i] != ' ' {
			return "", false
		}
	}
	return k, true
}

// tokenByte marks the bytes of an RFC 9110 token (a field name).
var tokenByte = func() (t [256]bool) {
	for c := range 256 {
		t[c] = httpguts.IsTokenRune(rune(c))
	}
	return t
}()

// validValueByte marks the bytes net/textproto accepts in a field value:
// VCHAR, SP, HTAB and obs-text (>= 0x80); not CR, LF, NUL or other CTLs.
var validValueByte = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= 0x20 && c != 0x7f || c == '\t'
	}
	return t
}()

// commonKeys interns the field names clients and backends send most, so
// that such a name in another case costs no allocation. A name already
// canonical is kept as the head's substring, like the values: interning
// it would cost a map lookup for each field. Requests (h1s_request.go) and
// responses (h1t_head.go) share it.
var commonKeys = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{
		// requests
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Authorization",
		"Cookie", "Dnt", "Expect", "Forwarded", "Grpc-Timeout", "Host", "Http2-Settings",
		"Idempotency-Key", "If-Match", "If-Modified-Since", "If-None-Match", "If-Range",
		"If-Unmodified-Since", "Origin", "Priority", "Proxy-Authorization", "Proxy-Connection",
		"Range", "Referer", "Sec-Ch-Ua", "Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform", "Sec-Fetch-Dest",
		"Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User", "Sec-Websocket-Extensions",
		"Sec-Websocket-Key", "Sec-Websocket-Protocol", "Sec-Websocket-Version", "Te",
		"Upgrade-Insecure-Requests", "User-Agent", "X-Forwarded-For", "X-Forwarded-Host",
		"X-Forwarded-Proto", "X-Real-Ip", "X-Requested-With",
		// responses (and both)
		"Accept-Ranges", "Access-Control-Allow-Credentials", "Access-Control-Allow-Headers",
		"Access-Control-Allow-Methods", "Access-Control-Allow-Origin", "Access-Control-Expose-Headers",
		"Access-Control-Max-Age", "Age", "Allow", "Alt-Svc", "Cache-Control", "Connection",
		"Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
		"Content-Location", "Content-Range", "Content-Security-Policy", "Content-Type", "Date",
		"Etag", "Expires", "Keep-Alive", "Last-Modified", "Link", "Location", "Pragma",
		"Proxy-Authenticate", "Referrer-Policy", "Retry-After", "Server", "Set-Cookie",
		"Strict-Transport-Security", "Trailer", "Transfer-Encoding", "Upgrade", "Vary", "Via",
		"Www-Authenticate", "X-Content-Type-Options", "X-Frame-Options", "X-Powered-By",
		"X-Request-Id", "X-Xss-Protection",
	} {
		m[k] = k
	}
	return m
}()
