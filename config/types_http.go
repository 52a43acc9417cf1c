package config

import (
	"net/netip"
	"time"
)

// HTTPSettings are the HTTP attributes of a TCP entrypoint that has
// http_routes.
type HTTPSettings struct {
	// MaxHeaderBytes bounds a request's header block; larger requests get
	// 431. Default 65536.
	MaxHeaderBytes int `json:"max_header_bytes"`
	// MaxConcurrentStreams is HTTP/2's SETTINGS_MAX_CONCURRENT_STREAMS.
	// Default 250.
	MaxConcurrentStreams int `json:"max_concurrent_streams"`
	// TrustedProxies are the peers whose X-Forwarded-*, Forwarded and
	// X-Request-Id headers are kept and appended to; from anyone else they
	// are replaced. Empty: trust nobody.
	TrustedProxies []netip.Prefix `json:"trusted_proxies,omitempty"`
	// WriteTimeout bounds writing a whole response; 0 (default) means no
	// bound, so long downloads and streams are not cut.
	WriteTimeout time.Duration `json:"write_timeout"`
	// Middlewares (entrypoint attribute `middlewares`) run for every
	// request on this entrypoint, before the route's own.
	Middlewares []string `json:"middlewares,omitempty"`
}

// HTTPRoute is an `http_route "name"` block.
type HTTPRoute struct {
	Name        string   `json:"name"`
	Entrypoints []string `json:"entrypoints"`
	// Hosts are lower case without a port or trailing dot; "*.example.com"
	// matches exactly one more label. Empty: any host.
	Hosts []string `json:"hosts,omitempty"`
	// At most one of Path (exact), PathPrefix and PathRegex is set.
	Path       string `json:"path,omitempty"`
	PathPrefix string `json:"path_prefix,omitempty"`
	PathRegex  string `json:"path_regex,omitempty"` // compiled by the router; Load proved it compiles
	// Methods are upper case. Empty: any method.
	Methods []string `json:"methods,omitempty"`
	// Headers and Query must all match exactly; header names are
	// canonical (textproto.CanonicalMIMEHeaderKey).
	Headers map[string]string `json:"headers,omitempty"`
	Query   map[string]string `json:"query,omitempty"`
	// ClientIP matches the client address (after PROXY protocol and
	// trusted forwarding headers).
	ClientIP []netip.Prefix `json:"client_ip,omitempty"`
	// Priority orders routes: higher first. 0 (default) leaves the order
	// to specificity: exact host, wildcard host, any host; then the longest
	// path; then the most matchers.
	Priority    int      `json:"priority"`
	Middlewares []string `json:"middlewares,omitempty"`
	Service     string   `json:"service"`
	Pos         Pos      `json:"-"`
}

// Backend schemes. A backend label without a scheme is SchemeTCP.
const (
	SchemeTCP   = ""      // host:port, L4 only
	SchemeTLS   = "tls"   // tls://host:port, L4 re-encryption
	SchemeHTTP  = "http"  // http://host:port, HTTP/1.1
	SchemeHTTPS = "https" // https://host:port, HTTP/1.1 or HTTP/2 by ALPN
	SchemeH2C   = "h2c"   // h2c://host:port, HTTP/2 without TLS (gRPC)
)

// Balancers for HTTP services, in addition to the L4 ones.
const (
	BalancerP2C  = "p2c"  // power of two choices on in-flight requests
	BalancerHash = "hash" // rendezvous hashing on HashKey
)

// Hash keys of BalancerHash (`hash_key`).
const (
	HashClientIP = "client_ip" // default
	HashPath     = "path"
	HashHost     = "host"
	// "header:NAME" and "cookie:NAME" hash a header's or cookie's value.
)

// HTTPService holds a service's HTTP settings (attributes and blocks that
// only HTTP services use).
type HTTPService struct {
	// HashKey is HashClientIP (default), HashPath, HashHost,
	// "header:Name" or "cookie:name"; used by BalancerHash.
	HashKey string `json:"hash_key,omitempty"`
	// PassHost sends the client's Host header to the backend (default
	// true); false sends the backend's host:port.
	PassHost bool `json:"pass_host"`
	// ResponseHeaderTimeout bounds the wait for a backend's response
	// headers; a timeout answers 504. Default 30s.
	ResponseHeaderTimeout time.Duration `json:"response_header_timeout"`
	// IdleConnTimeout closes pooled keep-alive connections idle this long.
	// Default 90s.
	IdleConnTimeout time.Duration `json:"idle_conn_timeout"`
	// MaxIdleConnsPerBackend sizes the keep-alive pool. Default 256.
	MaxIdleConnsPerBackend int `json:"max_idle_conns_per_backend"`
	// FlushInterval: 0 (default) flushes responses without Content-Length
	// and text/event-stream at once; > 0 flushes others periodically.
	FlushInterval time.Duration `json:"flush_interval"`

	Sticky         *Sticky         `json:"sticky,omitempty"`
	HealthCheck    *HealthCheck    `json:"health_check,omitempty"`
	CircuitBreaker *CircuitBreaker `json:"circuit_breaker,omitempty"`
	Retry          *Retry          `json:"retry,omitempty"`
}

// Sticky is a service's `sticky { cookie }` block: a cookie pins a client
// to the backend that served it first.
type Sticky struct {
	Cookie   string        `json:"cookie"`    // default "proxynow_sticky"
	MaxAge   time.Duration `json:"max_age"`   // 0 (default): a session cookie
	Secure   bool          `json:"secure"`    // default false
	HTTPOnly bool          `json:"http_only"` // default true
}

// HealthCheck is a service's active `health_check` block.
type HealthCheck struct {
	Path     string        `json:"path"`     // default "/"
	Method   string        `json:"method"`   // default GET
	Host     string        `json:"host"`     // Host header; default the backend's
	Interval time.Duration `json:"interval"` // default 5s
	Timeout  time.Duration `json:"timeout"`  // default 2s; must be < interval
	// ExpectStatus is the accepted status range, e.g. "200-399" (default)
	// or "200": Lo..Hi inclusive.
	ExpectStatusLo int `json:"expect_status_lo"`
	ExpectStatusHi int `json:"expect_status_hi"`
	// UnhealthyAfter consecutive failures take a backend out of rotation
	// (default 2); HealthyAfter consecutive successes bring it back
	// (default 1).
	UnhealthyAfter int `json:"unhealthy_after"`
	HealthyAfter   int `json:"healthy_after"`
}

// CircuitBreaker is a service's `circuit_breaker` block (sony/gobreaker):
// it opens when, within Interval, at least MinRequests requests were made
// and the failed ratio reached FailureRatio; while open, requests get 503
// with Retry-After; after OpenTimeout one probe is let through.
type CircuitBreaker struct {
	FailureRatio float64       `json:"failure_ratio"` // (0,1]; default 0.5
	MinRequests  int           `json:"min_requests"`  // default 20
	Interval     time.Duration `json:"interval"`      // default 10s
	OpenTimeout  time.Duration `json:"open_timeout"`  // default 30s
	// A failure is a transport error, a timeout, or a 5xx status
	// (FailureStatuses "500-599" by default).
	FailureStatusLo int `json:"failure_status_lo"`
	FailureStatusHi int `json:"failure_status_hi"`
}

// Retry is a service's `retry` block.
type Retry struct {
	// Attempts is the total number of tries, first one included (>= 1).
	// Default 2. Only requests that are safe to repeat are retried: GET,
	// HEAD, OPTIONS, TRACE (and requests with Idempotency-Key), and only
	// when the failure happened before the backend sent any response.
	Attempts int `json:"attempts"`
	// PerTryTimeout bounds each try; 0 (default) uses the service's
	// response header timeout.
	PerTryTimeout time.Duration `json:"per_try_timeout"`
}

// Respond is a service's `respond` block: a static answer, no backends.
type Respond struct {
	Status  int               `json:"status"` // default 200
	Body    string            `json:"body"`
	Headers map[string]string `json:"headers,omitempty"`
}
