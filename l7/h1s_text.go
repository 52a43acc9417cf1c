package l7

import (
	"net/http"
	"net/textproto"
	"strconv"
	"sync/atomic"
	"time"
)

// Text helpers of the HTTP/1 server: header keys, status lines, the Date
// value. Each is computed once, so a request costs no formatting.

// commonReqKeys maps the lower-case spelling of frequent request field names to
// their canonical form: a name in any case costs a map lookup, no
// allocation.
var commonReqKeys = func() map[string]string {
	keys := []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Authorization",
		"Cache-Control", "Connection", "Content-Encoding", "Content-Length", "Content-Type",
		"Cookie", "Date", "Dnt", "Expect", "Forwarded", "Grpc-Timeout", "Host", "If-Match",
		"If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since", "Keep-Alive",
		"Origin", "Pragma", "Priority", "Proxy-Authorization", "Proxy-Connection", "Range",
		"Referer", "Sec-Ch-Ua", "Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform", "Sec-Fetch-Dest",
		"Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User", "Sec-Websocket-Extensions",
		"Sec-Websocket-Key", "Sec-Websocket-Protocol", "Sec-Websocket-Version", "Te", "Trailer",
		"Transfer-Encoding", "Upgrade", "Upgrade-Insecure-Requests", "User-Agent", "Via",
		"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip", "X-Request-Id",
		"X-Requested-With", "Http2-Settings", "Idempotency-Key",
	}
	m := make(map[string]string, len(keys))
	for _, k := range keys {
		b := []byte(k)
		for i, c := range b {
			if 'A' <= c && c <= 'Z' {
				b[i] = c + 'a' - 'A'
			}
		}
		m[string(b)] = k
	}
	return m
}()

// canonicalReqKey returns the canonical form of a field name (a token, as the
// guard checked): from commonReqKeys, as name itself when it is canonical
// already (a substring of the request head: no allocation), or from
// net/textproto.
func canonicalReqKey(name string) string {
	if len(name) <= 32 {
		var buf [32]byte
		for i := 0; i < len(name); i++ {
			c := name[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			buf[i] = c
		}
		if k, ok := commonReqKeys[string(buf[:len(name)])]; ok {
			return k
		}
	}
	if isCanonicalKey(name) {
		return name
	}
	return textproto.CanonicalMIMEHeaderKey(name)
}

// isCanonicalKey reports whether name is in net/textproto's canonical form:
// upper case at the start and after each '-', lower case elsewhere.
func isCanonicalKey(name string) bool {
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case upper && 'a' <= c && c <= 'z', !upper && 'A' <= c && c <= 'Z':
			return false
		case c == ' ' || c >= 0x7f:
			return false // textproto leaves such names alone too, but say so
		}
		upper = c == '-'
	}
	return name != ""
}

// statusLines holds "HTTP/1.1 NNN Text\r\n" for every status net/http
// names; others are formatted when used.
var statusLines = func() (t [600]string) {
	for code := 100; code < 600; code++ {
		if text := http.StatusText(code); text != "" {
			t[code] = "HTTP/1.1 " + strconv.Itoa(code) + " " + text + "\r\n"
		}
	}
	return t
}()

// statusLine returns the status line of code for an HTTP/1.1 (or, with
// http10, HTTP/1.0) response.
func statusLine(code int, http10 bool) string {
	var s string
	if code >= 0 && code < len(statusLines) {
		s = statusLines[code]
	}
	if s == "" {
		text := http.StatusText(code)
		if text == "" {
			text = "status code " + strconv.Itoa(code)
		}
		s = "HTTP/1.1 " + strconv.Itoa(code) + " " + text + "\r\n"
	}
	if http10 {
		return "HTTP/1.0" + s[len("HTTP/1.1"):]
	}
	return s
}

// dateValue is the Date field value of responses, formatted at most once a
// second.
type dateValue struct {
	sec int64
	val string
}

var dateCache atomic.Pointer[dateValue]

func httpDate() string {
	now := time.Now()
	sec := now.Unix()
	if d := dateCache.Load(); d != nil && d.sec == sec {
		return d.val
	}
	d := &dateValue{sec: sec, val: now.UTC().Format(http.TimeFormat)}
	dateCache.Store(d)
	return d.val
}
