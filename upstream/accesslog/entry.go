package accesslog

import (
	"crypto/tls"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// HTTP is one HTTP request. Strings are read during LogHTTP only.
type HTTP struct {
	Time       time.Time  // when the request began
	Client     netip.Addr // after the PROXY protocol and trusted forwarding headers
	Method     string
	Host       string
	Path       string // the URL path as received
	URI        string // the request target as received (common/combined formats)
	Proto      string // "HTTP/1.1", "HTTP/2.0", "HTTP/3.0"
	Status     int
	Bytes      int64 // response body bytes written
	Duration   time.Duration
	Entrypoint string
	Route      string
	Service    string
	Backend    string
	RequestID  string
	TLSVersion uint16 // 0 without TLS
	SNI        string
	User       string // authenticated by basic_auth, or ""
	Referer    string // combined format
	UserAgent  string // combined format
}

// Conn is one TCP connection or UDP flow.
type Conn struct {
	Time       time.Time // when it began
	Network    string    // "tcp", "udp" or "quic" (a quic_route's passthrough flow)
	Entrypoint string
	Route      string
	Service    string
	Client     netip.AddrPort
	Backend    string
	BytesIn    int64 // from the client
	BytesOut   int64 // to the client
	Duration   time.Duration
	Reason     string // why it ended: "eof", "idle", "error", "no_backend", "shutdown", ...
}

// LogHTTP queues one request's line.
func (w *Writer) LogHTTP(e *HTTP) {
	if w != nil {
		w.enqueue(w.encodeHTTP(e))
	}
}

// LogConn queues one connection's or flow's line.
func (w *Writer) LogConn(e *Conn) {
	if w != nil {
		w.enqueue(w.encodeConn(e))
	}
}

// encodeHTTP and encodeConn return e's line in w's format, in a pooled
// buffer.
func (w *Writer) encodeHTTP(e *HTTP) *[]byte {
	b := getBuf()
	if w.format == JSON {
		*b = appendHTTPJSON(*b, e, &w.clock)
	} else {
		*b = appendHTTPCLF(*b, e, w.format == Combined)
	}
	return b
}

func (w *Writer) encodeConn(e *Conn) *[]byte {
	b := getBuf()
	if w.format == JSON {
		*b = appendConnJSON(*b, e, &w.clock)
	} else {
		*b = appendConnCLF(*b, e)
	}
	return b
}

// clock caches the formatted UTC second, so a line's timestamp costs a
// few appends (formatting a time from its layout is a third of a line's
// cost otherwise). The cache is replaced, never modified, once a second.
type clock struct{ sec atomic.Pointer[second] }

type second struct {
	unix int64
	text []byte // "2006-01-02T15:04:05."
}

// appendTime appends t as RFC 3339 UTC with microseconds.
func (c *clock) appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	s := c.sec.Load()
	if u := t.Unix(); s == nil || s.unix != u {
		s = &second{unix: u, text: t.AppendFormat(nil, "2006-01-02T15:04:05.")}
		c.sec.Store(s)
	}
	b = append(b, s.text...)
	us := t.Nanosecond() / 1000
	var d [6]byte
	for i := 5; i >= 0; i-- {
		d[i] = byte('0' + us%10)
		us /= 10
	}
	b = append(b, d[:]...)
	return append(b, 'Z')
}

func appendHTTPJSON(b []byte, e *HTTP, c *clock) []byte {
	b = append(b, `{"time":"`...)
	b = c.appendTime(b, e.Time)
	b = append(b, `","type":"http","client":"`...)
	if e.Client.IsValid() {
		b = e.Client.AppendTo(b)
	}
	b = append(b, '"')
	b = appendField(b, "method", e.Method)
	b = appendField(b, "host", e.Host)
	b = appendField(b, "path", e.Path)
	b = appendField(b, "protocol", e.Proto)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, e.Bytes, 10)
	b = appendDuration(b, e.Duration)
	b = appendField(b, "entrypoint", e.Entrypoint)
	b = appendField(b, "route", e.Route)
	b = appendField(b, "service", e.Service)
	b = appendField(b, "backend", e.Backend)
	b = appendField(b, "request_id", e.RequestID)
	if e.TLSVersion != 0 {
		b = appendField(b, "tls_version", TLSVersion(e.TLSVersion))
		b = appendField(b, "sni", e.SNI)
	}
	if e.User != "" {
		b = appendField(b, "user", e.User)
	}
	return append(b, "}\n"...)
}

func appendConnJSON(b []byte, e *Conn, c *clock) []byte {
	b = append(b, `{"time":"`...)
	b = c.appendTime(b, e.Time)
	b = append(b, `","type":"`...)
	b = append(b, e.Network...)
	b = append(b, `","client":"`...)
	if e.Client.IsValid() {
		b = e.Client.AppendTo(b)
	}
	b = append(b, '"')
	b = appendField(b, "entrypoint", e.Entrypoint)
	b = appendField(b, "route", e.Route)
	b = appendField(b, "service", e.Service)
	b = appendField(b, "backend", e.Backend)
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendInt(b, e.BytesIn, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, e.BytesOut, 10)
	b = appendDuration(b, e.Duration)
	b = appendField(b, "reason", e.Reason)
	return append(b, "}\n"...)
}

// appendField appends `,"key":"value"` with value JSON-escaped.
func appendField(b []byte, key, value string) []byte {
	b = append(b, `,"`...)
	b = append(b, key...)
	b = append(b, `":"`...)
	b = appendEscaped(b, value)
	return append(b, '"')
}

// appendDuration appends `,"duration":seconds` with microsecond precision.
func appendDuration(b []byte, d time.Duration) []byte {
	b = append(b, `,"duration":`...)
	return strconv.AppendFloat(b, d.Seconds(), 'f', 6, 64)
}

const hex = "0123456789abcdef"

// appendEscaped JSON-escapes s (RFC 8259 §7). Invalid UTF-8 becomes
// U+FFFD, so a client's bytes cannot break the line or the JSON.
func appendEscaped(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != 0x7f {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}

// TLSVersion names a TLS version as logs and metrics show it: "1.3",
// "1.2", ...; "unknown" for anything else.
func TLSVersion(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "1.3"
	case tls.VersionTLS12:
		return "1.2"
	case tls.VersionTLS11:
		return "1.1"
	case tls.VersionTLS10:
		return "1.0"
	}
	return "unknown"
}

const clfTime = "02/Jan/2006:15:04:05 -0700"

// appendHTTPCLF is the Common Log Format line (`host ident authuser [date]
// "request" status bytes`), plus `"referer" "user-agent"` for Combined.
func appendHTTPCLF(b []byte, e *HTTP, combined bool) []byte {
	b = appendAddrOrDash(b, e.Client)
	b = append(b, " - "...)
	b = appendCLFToken(b, e.User)
	b = append(b, " ["...)
	b = e.Time.AppendFormat(b, clfTime)
	b = append(b, `] "`...)
	b = appendCLFString(b, e.Method)
	b = append(b, ' ')
	b = appendCLFString(b, e.URI)
	b = append(b, ' ')
	b = appendCLFString(b, e.Proto)
	b = append(b, `" `...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, ' ')
	if e.Bytes == 0 {
		b = append(b, '-')
	} else {
		b = strconv.AppendInt(b, e.Bytes, 10)
	}
	if combined {
		b = append(b, ` "`...)
		b = appendCLFToken(b, e.Referer)
		b = append(b, `" "`...)
		b = appendCLFToken(b, e.UserAgent)
		b = append(b, '"')
	}
	return append(b, '\n')
}

// appendConnCLF writes a connection in the same spirit: `client - - [date]
// "TCP entrypoint route backend" reason bytes_in bytes_out duration`.
func appendConnCLF(b []byte, e *Conn) []byte {
	if e.Client.IsValid() {
		b = e.Client.Addr().AppendTo(b)
	} else {
		b = append(b, '-')
	}
	b = append(b, " - - ["...)
	b = e.Time.AppendFormat(b, clfTime)
	b = append(b, `] "`...)
	switch e.Network {
	case "udp":
		b = append(b, "UDP "...)
	case "quic":
		b = append(b, "QUIC "...)
	default:
		b = append(b, "TCP "...)
	}
	b = appendCLFString(b, e.Entrypoint)
	b = append(b, ' ')
	b = appendCLFString(b, e.Route)
	b = append(b, ' ')
	b = appendCLFString(b, e.Backend)
	b = append(b, `" `...)
	b = appendCLFToken(b, e.Reason)
	b = append(b, ' ')
	b = strconv.AppendInt(b, e.BytesIn, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, e.BytesOut, 10)
	b = append(b, ' ')
	b = strconv.AppendFloat(b, e.Duration.Seconds(), 'f', 6, 64)
	return append(b, '\n')
}

func appendAddrOrDash(b []byte, a netip.Addr) []byte {
	if a.IsValid() {
		return a.AppendTo(b)
	}
	return append(b, '-')
}

// appendCLFToken is s, or "-" when empty, with anything but visible ASCII
// escaped.
func appendCLFToken(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	return appendCLFString(b, s)
}

// appendCLFString escapes quotes, backslashes, spaces, control and
// non-ASCII bytes as \xHH (as nginx does), so a field cannot end the quoted request
// or the line.
func appendCLFString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			b = append(b, '\\', 'x', hex[c>>4], hex[c&0xf])
			continue
		}
		b = append(b, c)
	}
	return b
}
