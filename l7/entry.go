package l7

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/net/http/httpguts"

	"github.com/proxynow/proxynow/l7/middleware"
)

// reqInfo is what the entry handler learns about a request once; the
// proxy reads it. It is itself the request's context (it wraps the
// server's), so attaching it costs one allocation, not a context.WithValue
// on top of it; the request id's bytes and header value live in it too.
type reqInfo struct {
	context.Context
	peer    netip.Addr // the connection's peer (after the PROXY protocol)
	client  netip.Addr // the client: peer, or from trusted forwarding headers
	trusted bool       // peer is a trusted proxy: keep and append its forwarding headers
	// slowTrip: the balancer gave the request to a transport that may hold
	// it after the handler is done (not the HTTP/1 fast path, which clears
	// tripOpen as it takes a request): its outbound is not reused.
	// Next to trusted, so that reqInfo stays in its size class.
	slowTrip, tripOpen bool
	// routeIndex is the matched route's place in the routes the Router was
	// built from, which the Observer was built from too: it finds the
	// route's metrics by it, without hashing the name (route).
	// In the padding after the bools: reqInfo keeps its size class.
	routeIndex int32
	requestID  string
	entrypoint string
	route      string
	backend    string // set by the proxy: the backend that answered
	user       string // set by basic_auth: reqInfo is its middleware.UserSlot
	// checked is the outbound request whose header fields the proxy found
	// valid as it built them (outbound.valid); its header is not changed
	// after. Set by the proxy for the length of its round trip only: nil
	// otherwise, so that no later request on ri (error_pages' page) is
	// taken for it.
	checked *http.Request
	// w1xx is where the fast HTTP/1 path forwards a 1xx response, set by
	// the proxy for the length of its round trip (informational.go).
	w1xx http.ResponseWriter

	idHdr [1]string // the X-Request-Id header value: requestID
	idBuf [16]byte  // a generated requestID's bytes
}

type infoKey struct{}

// Value answers infoKey, and basic_auth's user slot key, with the reqInfo;
// every other key goes to the server's context (cancellation,
// http.ServerContextKey, ...).
func (ri *reqInfo) Value(key any) any {
	if _, ok := key.(infoKey); ok {
		return ri
	}
	if key == middleware.UserKey() {
		return ri
	}
	return ri.Context.Value(key)
}

// AfterFunc lets context.AfterFunc and context.WithCancel over a reqInfo
// reach the h1 server's request context (h1ctx) without a goroutine; over
// any other context it is context.AfterFunc's own registration.
func (ri *reqInfo) AfterFunc(f func()) func() bool {
	if a, ok := ri.Context.(afterFuncer); ok {
		return a.AfterFunc(f)
	}
	return context.AfterFunc(ri.Context, f)
}

func infoFrom(ctx context.Context) *reqInfo {
	if ri, ok := ctx.(*reqInfo); ok {
		return ri // the common case: no Value walk
	}
	ri, _ := ctx.Value(infoKey{}).(*reqInfo)
	return ri
}

// Entry is the http.Handler of one entrypoint: it resolves the client
// address, assigns a request id, and routes.
type Entry struct {
	entrypoint string
	router     *Router
	trusted    []netip.Prefix
	log        *slog.Logger
	// noRoute answers the requests no route takes (NoRoute), through the
	// entrypoint's middlewares when it has some (SetNoRoute); nil: NoRoute
	// itself, called directly.
	noRoute http.Handler
}

// SetNoRoute makes h the handler of the requests no route takes and of
// CONNECT: NoRoute wrapped in the entrypoint's middlewares, so that an
// entrypoint's ip_deny or rate_limit refuses or counts them too, as
// nginx's server-level directives and Traefik's entrypoint middlewares
// do. It sees the request as a route's handler would (ClientIP and the
// request id resolved). Call it before the Entry serves.
func (e *Entry) SetNoRoute(h http.Handler) { e.noRoute = h }

// NoRoute is the answer to a request no route takes: 404, or 405 with
// Allow for CONNECT, which a reverse proxy does not tunnel (a CONNECT
// forwarded to a backend would leave its pooled connection in an unknown
// state).
var NoRoute http.Handler = http.HandlerFunc(noRoute)

func noRoute(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		w.Header().Set("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
		writeError(w, http.StatusMethodNotAllowed)
		return
	}
	writeError(w, http.StatusNotFound)
}

// NewEntry builds an entrypoint's handler. Trusted are the peers whose
// X-Forwarded-For, Forwarded and X-Request-Id headers are believed.
func NewEntry(entrypoint string, router *Router, trusted []netip.Prefix, log *slog.Logger) *Entry {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Entry{entrypoint: entrypoint, router: router, trusted: trusted, log: log}
}

func (e *Entry) isTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range e.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (e *Entry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ri := newInfo(w, r.Context(), e.entrypoint) // the Observer's recorder keeps a pointer
	if hc, ok := r.Context().(*h1ctx); ok {
		ri.peer = hc.peer // the HTTP/1 server parsed RemoteAddr already
	} else {
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			ri.peer = ap.Addr().Unmap()
		}
		// HTTP/2's and HTTP/3's servers (l7's own, quic-go) take any
		// :method; HTTP/1's parser has checked it is a token. One that
		// is not would be refused by the outbound transport: a 502
		// counted against a healthy backend.
		if !validMethod(r.Method) {
			writeError(w, http.StatusBadRequest)
			return
		}
	}
	ri.client = ri.peer
	if ri.trusted = e.isTrusted(ri.peer); ri.trusted {
		ri.client = e.clientFromXFF(r.Header["X-Forwarded-For"], ri.peer)
		if id := r.Header.Get("X-Request-Id"); validRequestID(id) {
			ri.requestID = id
		}
	}
	if ri.requestID == "" {
		ri.requestID = newRequestID(&ri.idBuf)
	}
	ri.idHdr[0] = ri.requestID
	w.Header()["X-Request-Id"] = ri.idHdr[:]

	m := e.router.match(r, hostOnly(r.Host), ri.client)
	var route *Route
	if m != nil {
		route = m.route
	}
	if isUpgrade(r) && (route == nil || !route.Upgrades) {
		// Nothing here will switch protocols: the connection must not go
		// on as HTTP/1 after the client's upgrade bytes.
		w.Header().Set("Connection", "close")
	}
	if route == nil || r.Method == http.MethodConnect {
		e.serveNoRoute(w, r, ri)
		return
	}
	ri.route, ri.routeIndex = m.name, int32(m.rank.index) // m.name: route.Config is one more cache miss
	if r.Context().Value(ownRequestKey{}) != nil {
		setRequestContext(&r, ri) // the h1 server's own request: no copy
	} else {
		r = r.WithContext(ri)
	}
	route.Handler.ServeHTTP(w, r)
}

// serveNoRoute answers a request no route takes, through the entrypoint's
// middlewares if it has some; the route stays "" for the metrics and log.
func (e *Entry) serveNoRoute(w http.ResponseWriter, r *http.Request, ri *reqInfo) {
	if e.noRoute == nil {
		noRoute(w, r)
		return
	}
	// As ServeHTTP does for a route (not shared: the matched path keeps
	// it inline).
	if r.Context().Value(ownRequestKey{}) != nil {
		setRequestContext(&r, ri)
	} else {
		r = r.WithContext(ri)
	}
	e.noRoute.ServeHTTP(w, r)
}

// ClientIP is the request's client address as the entry handler resolved
// it (after the PROXY protocol and trusted forwarding headers); for a
// request that did not pass through an Entry, the peer address.
func ClientIP(r *http.Request) netip.Addr {
	if ri := infoFrom(r.Context()); ri != nil {
		return ri.client
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// ForwardedTrusted reports whether the request came from one of the
// entrypoint's trusted proxies, whose X-Forwarded-For is kept.
func ForwardedTrusted(r *http.Request) bool {
	ri := infoFrom(r.Context())
	return ri != nil && ri.trusted
}

// isUpgrade reports a request asking to switch protocols (RFC 9110 §7.8).
func isUpgrade(r *http.Request) bool {
	up := r.Header["Upgrade"] // canonical already: no Get's canonicalisation
	return len(up) > 0 && up[0] != "" && httpguts.HeaderValuesContainsToken(r.Header["Connection"], "upgrade")
}

// clientFromXFF walks X-Forwarded-For from the right, skipping trusted
// proxies: the first address that is not one of ours is the client (the
// left part of the header is whatever the client wrote, so it is not
// believed).
func (e *Entry) clientFromXFF(values []string, peer netip.Addr) netip.Addr {
	client := peer
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		for v != "" {
			j := strings.LastIndexByte(v, ',')
			part := strings.TrimSpace(v[j+1:])
			v = v[:max(j, 0)]
			if j < 0 {
				v = ""
			}
			a, err := netip.ParseAddr(part)
			if err != nil {
				return client
			}
			client = a.Unmap()
			if !e.isTrusted(client) {
				return client
			}
		}
	}
	return client
}

// validRequestID accepts ids of visible ASCII up to 128 bytes, so a peer's
// id cannot inject anything into logs or headers.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// newRequestID formats a random id into buf, which must outlive the string
// (it is the reqInfo's own array: the id costs no allocation of its own).
func newRequestID(buf *[16]byte) string {
	b := strconv.AppendUint(buf[:0], rand.Uint64(), 16)
	return unsafe.String(&b[0], len(b))
}

// hostOnly strips a port from a Host header value ("[::1]:80" -> "[::1]").
func hostOnly(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		return host[:i]
	}
	return host
}
