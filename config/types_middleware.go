package config

import (
	"net/netip"
	"time"
)

// Middleware kinds: the block name inside `middleware "name" { KIND { } }`.
const (
	MWRateLimit        = "rate_limit"
	MWInFlight         = "in_flight"
	MWBasicAuth        = "basic_auth"
	MWForwardAuth      = "forward_auth"
	MWHeaders          = "headers"
	MWCompress         = "compress"
	MWRedirectScheme   = "redirect_scheme"
	MWRedirectRegex    = "redirect_regex"
	MWStripPrefix      = "strip_prefix"
	MWAddPrefix        = "add_prefix"
	MWReplacePath      = "replace_path"
	MWReplacePathRegex = "replace_path_regex"
	MWIPAllow          = "ip_allow"
	MWIPDeny           = "ip_deny"
	MWMaxBody          = "max_body"
	MWErrorPages       = "error_pages"
)

// Middleware is a `middleware "name"` block. It holds exactly one kind:
// Kind names it and exactly the matching pointer field is non-nil.
type Middleware struct {
	Name string `json:"name"`
	Kind string `json:"kind"`

	RateLimit        *RateLimit        `json:"rate_limit,omitempty"`
	InFlight         *InFlight         `json:"in_flight,omitempty"`
	BasicAuth        *BasicAuth        `json:"basic_auth,omitempty"`
	ForwardAuth      *ForwardAuth      `json:"forward_auth,omitempty"`
	Headers          *Headers          `json:"headers,omitempty"`
	Compress         *Compress         `json:"compress,omitempty"`
	RedirectScheme   *RedirectScheme   `json:"redirect_scheme,omitempty"`
	RedirectRegex    *RedirectRegex    `json:"redirect_regex,omitempty"`
	StripPrefix      *StripPrefix      `json:"strip_prefix,omitempty"`
	AddPrefix        *AddPrefix        `json:"add_prefix,omitempty"`
	ReplacePath      *ReplacePath      `json:"replace_path,omitempty"`
	ReplacePathRegex *ReplacePathRegex `json:"replace_path_regex,omitempty"`
	IPAllow          *IPFilter         `json:"ip_allow,omitempty"`
	IPDeny           *IPFilter         `json:"ip_deny,omitempty"`
	MaxBody          *MaxBody          `json:"max_body,omitempty"`
	ErrorPages       *ErrorPages       `json:"error_pages,omitempty"`

	Pos Pos `json:"-"`
}

// Keys of rate_limit and in_flight: KeyClientIP (default), KeyHost, or
// "header:Name" (canonical name; a request without the header, or with
// it empty, is keyed by its client address).
const (
	KeyClientIP = "client_ip"
	KeyHost     = "host"
)

// RateLimit is a token bucket per key: Average requests per Period refill,
// up to Burst at once. Over the limit: 429 with Retry-After and RateLimit-*
// headers.
type RateLimit struct {
	Average int           `json:"average"` // > 0, required
	Burst   int           `json:"burst"`   // >= 1; default Average
	Period  time.Duration `json:"period"`  // default 1s
	Key     string        `json:"key"`     // default client_ip
	// MaxKeys bounds the keys tracked; the least recently used is evicted.
	// Default 100000.
	MaxKeys int `json:"max_keys"`
}

// InFlight caps concurrent requests per key; over the cap: 429.
type InFlight struct {
	Max int    `json:"max"` // > 0, required
	Key string `json:"key"` // default client_ip
}

// BasicAuth checks RFC 7617 credentials against htpasswd lines
// ("user:$2y$..." bcrypt, or "user:$5$..." SHA-256 crypt) from Users and
// UsersFile (read at load). Plain-text passwords are refused at load.
type BasicAuth struct {
	// Users holds every validated "user:hash" line: those of the users
	// list, then those of UsersFile (read at load; blank and # lines
	// dropped). The runtime uses only Users and never reads the file.
	// User names are unique and at least one is present.
	Users []string `json:"users,omitempty"`
	// UsersFile is the file's path (resolved like Certificate.CertFile),
	// for reference and reload decisions.
	UsersFile string `json:"users_file,omitempty"`
	Realm     string `json:"realm"` // default "proxynow"
	// StripHeader removes Authorization before the backend (default true).
	StripHeader bool `json:"strip_header"`
	// HeaderField, when set, sends the authenticated user name to the
	// backend in this header (canonical name).
	HeaderField string `json:"header_field,omitempty"`
}

// ForwardAuth asks Address (http:// or https:// URL) about each request.
type ForwardAuth struct {
	Address            string        `json:"address"`
	TrustForwardHeader bool          `json:"trust_forward_header"`
	RequestHeaders     []string      `json:"request_headers,omitempty"`  // copied to the auth request (canonical); empty: all
	ResponseHeaders    []string      `json:"response_headers,omitempty"` // copied from a 2xx auth answer onto the request (canonical)
	Timeout            time.Duration `json:"timeout"`                    // default 5s
}

// HeaderOps are the set/add/remove operations on one message's headers.
type HeaderOps struct {
	Set    map[string]string `json:"set,omitempty"` // canonical names
	Add    map[string]string `json:"add,omitempty"`
	Remove []string          `json:"remove,omitempty"`
}

// CORS answers preflights and decorates responses.
type CORS struct {
	AllowOrigins     []string      `json:"allow_origins"` // "*" or exact origins
	AllowMethods     []string      `json:"allow_methods,omitempty"`
	AllowHeaders     []string      `json:"allow_headers,omitempty"`
	ExposeHeaders    []string      `json:"expose_headers,omitempty"`
	AllowCredentials bool          `json:"allow_credentials"`
	MaxAge           time.Duration `json:"max_age"`
}

// HSTS is the Strict-Transport-Security header (sent on HTTPS only).
type HSTS struct {
	MaxAge            time.Duration `json:"max_age"` // default 1 year
	IncludeSubdomains bool          `json:"include_subdomains"`
	Preload           bool          `json:"preload"`
}

// Headers is the `headers` kind.
type Headers struct {
	Request  HeaderOps `json:"request"`
	Response HeaderOps `json:"response"`
	CORS     *CORS     `json:"cors,omitempty"`
	HSTS     *HSTS     `json:"hsts,omitempty"`
	// Security adds X-Content-Type-Options: nosniff, X-Frame-Options:
	// SAMEORIGIN and Referrer-Policy: strict-origin-when-cross-origin.
	Security bool `json:"security"`
}

// Compress encodes responses by Accept-Encoding.
type Compress struct {
	Encodings []string `json:"encodings"`  // subset of zstd, br, gzip; default all three in that order of preference
	MinLength int      `json:"min_length"` // default 1024
	// Types are the compressible media types (prefix match, e.g. "text/");
	// default a list of text, JSON, JavaScript, XML, SVG, wasm types.
	Types []string `json:"types,omitempty"`
}

// RedirectScheme redirects to another scheme (and port).
type RedirectScheme struct {
	Scheme    string `json:"scheme"` // default "https"
	Port      int    `json:"port"`   // 0: the default port of Scheme
	Permanent bool   `json:"permanent"`
}

// RedirectRegex redirects when the full request URL matches Regex.
type RedirectRegex struct {
	Regex       string `json:"regex"`
	Replacement string `json:"replacement"`
	Permanent   bool   `json:"permanent"`
}

// StripPrefix removes the first matching prefix (on a segment boundary)
// and sets X-Forwarded-Prefix.
type StripPrefix struct {
	Prefixes []string `json:"prefixes"`
}

// AddPrefix prepends Prefix to the path.
type AddPrefix struct {
	Prefix string `json:"prefix"`
}

// ReplacePath replaces the path (X-Replaced-Path keeps the original).
type ReplacePath struct {
	Path string `json:"path"`
}

// ReplacePathRegex rewrites the path by a regex.
type ReplacePathRegex struct {
	Regex       string `json:"regex"`
	Replacement string `json:"replacement"`
}

// IPFilter is ip_allow / ip_deny: CIDRs matched against the client address.
type IPFilter struct {
	CIDRs []netip.Prefix `json:"cidrs"`
	// Depth (ip_allow only): take the address Depth entries from the right
	// of X-Forwarded-For instead of the resolved client; 0 (default) uses
	// the resolved client address.
	Depth int `json:"depth"`
}

// MaxBody limits request bodies: 413 as soon as Bytes is exceeded.
type MaxBody struct {
	Bytes int64 `json:"bytes"`
}

// ErrorPages replaces error responses whose status is in a range with the
// response of Service for Path ("{status}" is replaced by the code).
type ErrorPages struct {
	Statuses []StatusRange `json:"statuses"`
	Service  string        `json:"service"`
	Path     string        `json:"path"`
}

// StatusRange is an inclusive status range ("500-599" or "404").
type StatusRange struct {
	Lo int `json:"lo"`
	Hi int `json:"hi"`
}
