package middleware

// Helpers shared by the traffic kinds (rate_limit, in_flight, ip_allow,
// ip_deny, max_body). Names start with "traffic" so they cannot collide
// with the helpers of the other kinds in this package.

import (
	"fmt"
	"hash/maphash"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/proxynow/proxynow/config"
)

// trafficShards is the number of lock shards of the per-key tables, so
// that requests of different clients rarely wait on the same mutex.
const trafficShards = 64

// trafficKey extracts the key of rate_limit and in_flight. Exactly one of
// addr and str is set: client addresses are keyed by netip.Addr, a
// comparable value, so that looking up an existing client allocates
// nothing.
type trafficKey struct {
	addr func(*http.Request) netip.Addr
	str  func(*http.Request) string
}

// parseTrafficKey turns key = "client_ip" (default, also for ""), "host" or
// "header:NAME" into an extractor.
func parseTrafficKey(spec string, env Env) (trafficKey, error) {
	switch name, isHeader := strings.CutPrefix(spec, "header:"); {
	case spec == "" || spec == config.KeyClientIP:
		return trafficKey{addr: env.ClientIP}, nil
	case spec == config.KeyHost:
		return trafficKey{str: func(r *http.Request) string { return trafficHost(r.Host) }}, nil
	case isHeader && name != "":
		name = http.CanonicalHeaderKey(name)
		// A request without the header shares the "" key with every other
		// such request: they are limited together, not let through.
		return trafficKey{str: func(r *http.Request) string {
			if v := r.Header[name]; len(v) > 0 {
				return v[0]
			}
			return ""
		}}, nil
	default:
		return trafficKey{}, fmt.Errorf("unknown key %q; use %q, %q or \"header:NAME\"", spec, config.KeyClientIP, config.KeyHost)
	}
}

// trafficHost is the host of a Host header without its port, lower-cased
// (host names are case-insensitive, RFC 9110 §4.2.3). It allocates only
// when the host has upper-case letters.
func trafficHost(h string) string {
	if strings.HasPrefix(h, "[") { // "[::1]:8080"
		if i := strings.IndexByte(h, ']'); i > 0 {
			h = h[1:i]
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h, ':') == i {
		h = h[:i]
	}
	return strings.ToLower(h)
}

// trafficHashAddr and trafficHashString pick a shard. The seed is random
// per middleware, so that a client cannot aim all its keys at one shard.
func trafficHashAddr(seed maphash.Seed) func(netip.Addr) uint64 {
	return func(a netip.Addr) uint64 {
		b := a.As16()
		return maphash.Bytes(seed, b[:])
	}
}

func trafficHashString(seed maphash.Seed) func(string) uint64 {
	return func(s string) uint64 { return maphash.String(seed, s) }
}

// trafficRefuse answers code with a short plain-text body such as
// "429 Too Many Requests\n".
func trafficRefuse(w http.ResponseWriter, code int) {
	body := strconv.Itoa(code) + " " + http.StatusText(code) + "\n"
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

// trafficCeilDiv is ⌈a/b⌉ for a >= 0, b > 0.
func trafficCeilDiv(a, b int64) int64 {
	if a <= 0 {
		return 0
	}
	return (a-1)/b + 1
}
