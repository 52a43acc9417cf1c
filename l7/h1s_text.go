package l7

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Text helpers of the HTTP/1 server: status lines and the Date value, each
// computed once, so a response costs no formatting. (Field names are
// canonicalized by canonicalKey, h1t_keys.go, shared with the upstream
// response parser.)

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
// second. Whether the second has passed is asked of the monotonic clock
// (monoNow, half of time.Now's cost): until is when the wall clock's second
// ends, as a monoNow reading, a little early (the two clocks are read one
// after the other), so a Date is never late by more than that.
type dateValue struct {
	until int64
	val   string
}

var dateCache atomic.Pointer[dateValue]

func httpDate() string {
	mono := monoNow()
	if d := dateCache.Load(); d != nil && mono < d.until {
		return d.val
	}
	now := time.Now()
	d := &dateValue{until: mono + int64(time.Second) - int64(now.Nanosecond()), val: now.UTC().Format(http.TimeFormat)}
	dateCache.Store(d)
	return d.val
}
