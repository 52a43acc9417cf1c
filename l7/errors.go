package l7

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/proxynow/proxynow/upstream"
)

// writeError answers with a short plain-text body: "502 Bad Gateway\n".
func writeError(w http.ResponseWriter, code int) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(strconv.Itoa(code) + " " + http.StatusText(code) + "\n"))
}

// statusFor maps a proxying error to the status the client gets: 503 with
// Retry-After for an open breaker or no healthy backend, 504 for a backend
// that timed out, 502 for any other backend failure.
func statusFor(err error) (code int, retryAfter time.Duration) {
	var open *upstream.OpenError
	switch {
	case errors.As(err, &open):
		return http.StatusServiceUnavailable, open.RetryAfter
	case errors.Is(err, upstream.ErrBreakerOpen):
		return http.StatusServiceUnavailable, time.Second
	case errors.Is(err, upstream.ErrNoHealthy):
		return http.StatusServiceUnavailable, 0
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return http.StatusGatewayTimeout, 0
	}
	return http.StatusBadGateway, 0
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
