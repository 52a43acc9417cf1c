package l7

import (
	"net/http"
	"strconv"
)

// EarlyData guards a handler against replayed 0-RTT requests (RFC 8470).
// A request whose TLS handshake had not completed when it arrived came in
// early data, which an attacker can replay: a safe method goes on with
// "Early-Data: 1" so the backend can refuse it too (§5.1), anything else
// gets 425 Too Early and the client retries after the handshake (§5.2).
func EarlyData(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && !r.TLS.HandshakeComplete {
			if !replaySafe(r.Method) {
				writeError(w, http.StatusTooEarly)
				return
			}
			r.Header["Early-Data"] = earlyDataOne
		}
		h.ServeHTTP(w, r)
	})
}

// earlyDataOne is shared like AltSvc's value (length == capacity).
var earlyDataOne = []string{"1"}

// replaySafe are the methods whose replay changes nothing (RFC 9110
// §9.2.1); TRACE is left out as it echoes the request.
func replaySafe(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// AltSvc advertises HTTP/3 on port with Alt-Svc (RFC 7838) on responses to
// requests that came over TLS: browsers only take an h3 alternative for an
// https origin. The value is built once; ma is a day, as Caddy and nginx.
func AltSvc(port int, h http.Handler) http.Handler {
	// Shared by every response: its capacity is its length, so a later
	// Header.Add (ReverseProxy copying a backend's own Alt-Svc) appends to
	// a new array, never to this one.
	v := []string{`h3=":` + strconv.Itoa(port) + `"; ma=86400`}
	v = v[:1:1]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			w.Header()["Alt-Svc"] = v
		}
		h.ServeHTTP(w, r)
	})
}
