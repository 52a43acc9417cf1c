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
// addr, str and hdr is set: client addresses are keyed by netip.Addr, a
// comparable value, so that looking up an existing client allocates
// nothing.
type trafficKey struct {
	addr func(*http.Request) netip.Addr
	str  func(*http.Request) string
	hdr  func(*http.Request) trafficHdrKey
}

// trafficHdrKey is the key of key = "header:NAME": the header's first
// value or, for a request without the header (or with it empty), its
// client address. Such requests are limited per client: not let through,
// which would let anyone escape the limit by leaving the header out, and
// not in one shared bucket, which one client could drain for every other
// (nginx's limit_req leaves an empty key unlimited; proxynow has no map
// to make the key empty on purpose, so an empty one is only ever a
// client's omission). Exactly one field is set, so a value never shares
// a bucket with an address written the same way.
type trafficHdrKey struct {
	value  string
	client netip.Addr
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
		return trafficKey{hdr: func(r *http.Request) trafficHdrKey {
			if v := r.Header[name]; len(v) > 0 && v[0] != "" {
				return trafficHdrKey{value: v[0]}
			}
			return trafficHdrKey{client: env.ClientIP(r)}
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

func trafficHashHdr(seed maphash.Seed) func(trafficHdrKey) uint64 {
	addr, str := trafficHashAddr(seed), trafficHashString(seed)
	return func(k trafficHdrKey) uint64 {
		if k.value != "" {
			return str(k.value)
		}
		return addr(k.client)
	}
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
