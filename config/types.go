package config

import (
	"cmp"
	"fmt"
	"net/netip"
	"time"
)

// Config is one loaded, validated configuration. It is immutable once Load
// returns it: runtime packages read it and never change it.
type Config struct {
	// Files are the configuration files it was read from, in load order.
	Files       []string     `json:"files"`
	Global      Global       `json:"global"`
	Log         Log          `json:"log"`
	Admin       *Admin       `json:"admin,omitempty"` // nil: no admin endpoint
	Entrypoints []Entrypoint `json:"entrypoints"`
	TLS         TLS          `json:"tls"`
	TCPRoutes   []TCPRoute   `json:"tcp_routes"`
	HTTPRoutes  []HTTPRoute  `json:"http_routes"`
	Middlewares []Middleware `json:"middlewares"`
	UDPRoutes   []UDPRoute   `json:"udp_routes"`
	QUICRoutes  []QUICRoute  `json:"quic_routes,omitempty"`
	Services    []Service    `json:"services"`
	// Warnings are diagnostics that did not stop the load.
	Warnings Diagnostics `json:"warnings,omitempty"`
}

// Pos is a place in a configuration file, 1-based.
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"col"`
}

// String is "file:line:col", or just "file" when the line is unknown (a
// file that could not be read).
func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Compare orders places by file, line and column (-1, 0 or +1).
func (p Pos) Compare(q Pos) int {
	return cmp.Or(cmp.Compare(p.File, q.File), cmp.Compare(p.Line, q.Line), cmp.Compare(p.Col, q.Col))
}

// Global holds process-wide settings (the `global` block).
type Global struct {
	// GracePeriod bounds how long shutdown waits for open connections and
	// flows to finish. Default 10s.
	GracePeriod time.Duration `json:"grace_period"`
	// Watch reloads the configuration when one of its files, or a
	// certificate or key file it names, changes (fsnotify, debounced).
	// Default false: reload on SIGHUP or POST /reload only.
	Watch bool `json:"watch,omitempty"`
}

// Log is the `log` block.
type Log struct {
	Level  string `json:"level"`  // debug | info | warn | error; default info
	Format string `json:"format"` // text | json; default text
	// Access, when set, writes an access log (log { access { } }).
	Access *AccessLog `json:"access,omitempty"`
}

// Network values of an entrypoint.
const (
	NetworkTCP = "tcp"
	NetworkUDP = "udp"
)

// Entrypoint is an `entrypoint "name"` block: one listening socket.
type Entrypoint struct {
	Name    string `json:"name"`
	Address string `json:"address"` // host:port as written, e.g. ":8080", "[::1]:53"
	Network string `json:"network"` // NetworkTCP (default) or NetworkUDP
	// ProxyProtocol is nil when PROXY protocol is not accepted here.
	ProxyProtocol *ProxyProtocolIn `json:"proxy_protocol,omitempty"`
	Timeouts      Timeouts         `json:"timeouts"`
	// MaxConnections caps open TCP connections; excess ones are closed at
	// once. Default 10000. TCP only.
	MaxConnections int `json:"max_connections"`
	// MaxFlows caps UDP flows; datagrams that would open another are
	// dropped. Default 10000. UDP only.
	MaxFlows int `json:"max_flows"`
	// HTTP holds the HTTP settings, used when http_routes name this
	// entrypoint.
	HTTP HTTPSettings `json:"http"`
	// HTTP3 is non-nil exactly when `http3 = true`.
	HTTP3 *HTTP3Settings `json:"http3,omitempty"`
	Pos   Pos            `json:"-"`
}

// ProxyProtocolIn is the `proxy_protocol` block of an entrypoint.
type ProxyProtocolIn struct {
	// Trusted peers must send a PROXY v1 or v2 header; others must not.
	Trusted []netip.Prefix `json:"trusted"`
	// Timeout bounds reading the header. Default 5s.
	Timeout time.Duration `json:"timeout"`
}

// Timeouts is the `timeouts` block of an entrypoint.
type Timeouts struct {
	// Handshake bounds reading a TLS ClientHello and a TLS handshake of a
	// terminating route. Default 10s.
	Handshake time.Duration `json:"handshake"`
	// ReadHeader bounds reading HTTP request headers (used once L7 lands).
	// Default 10s.
	ReadHeader time.Duration `json:"read_header"`
	// Idle closes a TCP connection on which no byte moved either way for
	// this long. Default 5m.
	Idle time.Duration `json:"idle"`
}

// TLS versions accepted by min_version.
const (
	TLSVersion12 = "1.2"
	TLSVersion13 = "1.3"
)

// TLS is the top-level `tls` block: settings of the TLS connections
// proxynow terminates.
type TLS struct {
	// MinVersion is TLSVersion12 (default) or TLSVersion13.
	MinVersion string `json:"min_version"`
	// Certificates are in the order written; names are unique. Never nil.
	Certificates []Certificate `json:"certificates"`
	// ACME are the acme blocks in the order written; names are unique.
	// Never nil.
	ACME []ACME `json:"acme"`
}

// Certificate is a `certificate "name"` block of the tls block. The config
// holds only paths: Load proved that the files loaded as a pair when it
// ran, and the runtime loads them itself (and again when they change).
type Certificate struct {
	Name string `json:"name"`
	// CertFile and KeyFile are PEM files. A relative path in the file is
	// resolved against the directory of the config file that names it, so
	// these are absolute when that config file was named by an absolute
	// path, else relative to the working directory of the Load call.
	CertFile string `json:"cert_file"`
	KeyFile  string `json:"key_file"`
	// Default marks the certificate served when no certificate matches the
	// client's SNI (or it sent none). At most one certificate has it; when
	// none has, the choice of fallback is the runtime's.
	Default bool `json:"default"`
	Pos     Pos  `json:"-"`
}

// TLS modes of a tcp_route.
const (
	// TLSNone: the route gets connections that do not start with a TLS
	// ClientHello, as raw bytes.
	TLSNone = "none"
	// TLSPassthrough: the route gets TLS connections whose ClientHello
	// matches; the bytes, ClientHello included, go to the backend as they
	// are.
	TLSPassthrough = "passthrough"
	// TLSTerminate: proxynow completes the handshake with one of the
	// configured certificates and pipes the plaintext to the backend.
	TLSTerminate = "terminate"
)

// TCPRoute is a `tcp_route "name"` block.
//
// How routes on one entrypoint split its connections (Load guarantees that
// these steps never find two routes):
//
//   - A connection that does not start with a TLS ClientHello goes to the
//     route with TLS == TLSNone.
//   - A TLS connection is matched in three tiers: the routes whose SNI
//     lists the exact server name; then those with the wildcard "*.rest",
//     rest being the name without its first label (a wildcard stands for
//     exactly one label: "*.example.com" matches neither "example.com"
//     nor "a.b.example.com"); then the routes without SNI (the TLS
//     catch-alls). Within a tier, the client's ALPN protocols are tried in
//     the client's order and the first that a route lists picks that
//     route; else the tier's route without ALPN matches; else the next
//     tier is tried. No match closes the connection.
type TCPRoute struct {
	Name        string   `json:"name"`
	Entrypoints []string `json:"entrypoints"`
	// SNI lists server names, lower case and without a trailing dot; an
	// entry may be a wildcard "*.example.com". Empty (nil) matches any
	// name, and a ClientHello without SNI.
	SNI []string `json:"sni,omitempty"`
	// ALPN lists protocol names, compared byte for byte; the route matches
	// when the client offers any of them. Empty (nil) matches any offer,
	// and none.
	ALPN []string `json:"alpn,omitempty"`
	// TLS is TLSNone, TLSPassthrough or TLSTerminate. Default:
	// TLSPassthrough when sni or alpn is written, else TLSNone.
	TLS     string `json:"tls"`
	Service string `json:"service"`
	Pos     Pos    `json:"-"`
}

// UDPRoute is a `udp_route "name"` block.
type UDPRoute struct {
	Name        string   `json:"name"`
	Entrypoints []string `json:"entrypoints"`
	Service     string   `json:"service"`
	// IdleTimeout ends a flow with no datagram either way for this long.
	// Default 30s.
	IdleTimeout time.Duration `json:"idle_timeout"`
	Pos         Pos           `json:"-"`
}

// Balancer names.
const (
	BalancerRoundRobin = "round_robin"
	BalancerWeighted   = "weighted"
	BalancerLeastConn  = "least_conn"
	BalancerRandom     = "random"
)

// Service is a `service "name"` block: a pool of backends.
type Service struct {
	Name     string    `json:"name"`
	Balancer string    `json:"balancer"` // default round_robin
	Backends []Backend `json:"backends"`
	// ProxyProtocol is "", "v1" or "v2": the PROXY header sent on each
	// backend connection (UDP: v2 only, prefixed to every datagram).
	ProxyProtocol string `json:"proxy_protocol,omitempty"`
	// ConnectTimeout bounds one dial to a backend. Default 5s.
	ConnectTimeout time.Duration `json:"connect_timeout"`
	// FailTimeout is how long a backend that failed a dial is skipped.
	// Default 10s.
	FailTimeout time.Duration `json:"fail_timeout"`
	// TLS is how to connect to the backends that have TLS set. It is
	// non-nil exactly when the service has such a backend or a tls block
	// was written (a warning when no backend uses it).
	TLS *BackendTLS `json:"tls,omitempty"`
	// HTTP holds the settings only HTTP services use.
	HTTP HTTPService `json:"http"`
	// Respond, when set, makes this a built-in service answering every
	// request itself; it then has no backends.
	Respond *Respond `json:"respond,omitempty"`
	Pos     Pos      `json:"-"`
}

// Backend is a `backend "host:port"` or `backend "tls://host:port"` block
// inside a service.
type Backend struct {
	Address string `json:"address"` // host:port, without the tls:// scheme
	// TLS is true for "tls://host:port": connections to this backend are
	// TLS (re-encrypted), set up as the service's TLS says.
	TLS bool `json:"tls,omitempty"`
	// Scheme is the label's scheme: SchemeTCP, SchemeTLS, SchemeHTTP,
	// SchemeHTTPS, SchemeH2C or SchemeH3. TLS is true for SchemeTLS,
	// SchemeHTTPS and SchemeH3.
	Scheme string `json:"scheme,omitempty"`
	// ServerName is what a TLS backend's certificate is verified against
	// and the SNI sent: the service's tls.server_name, else the host of
	// Address. It is empty when the host is an IP address and no
	// server_name is set: then no SNI is sent and the certificate must
	// name the IP (crypto/tls does that when tls.Config.ServerName holds
	// the IP). Always empty for a plain backend.
	ServerName string `json:"server_name,omitempty"`
	Weight     int    `json:"weight"` // > 0; default 1
	Pos        Pos    `json:"-"`
}

// BackendTLS is the `tls` block of a service.
type BackendTLS struct {
	// ServerName overrides the name each TLS backend is verified against
	// (see Backend.ServerName, which holds the result); "" when not set.
	// Lower case, without a trailing dot.
	ServerName string `json:"server_name,omitempty"`
	// CAFile is a PEM bundle of the roots that verify the backends'
	// certificates, its path resolved like Certificate.CertFile; "" means
	// the system roots. Load proved that it held a certificate.
	CAFile string `json:"ca_file,omitempty"`
	// InsecureSkipVerify turns off verifying the backends' certificates.
	InsecureSkipVerify bool `json:"insecure_skip_verify,omitempty"`
}

// Entrypoint returns the entrypoint named name, or nil.
func (c *Config) Entrypoint(name string) *Entrypoint {
	for i := range c.Entrypoints {
		if c.Entrypoints[i].Name == name {
			return &c.Entrypoints[i]
		}
	}
	return nil
}

// Service returns the service named name, or nil.
func (c *Config) Service(name string) *Service {
	for i := range c.Services {
		if c.Services[i].Name == name {
			return &c.Services[i]
		}
	}
	return nil
}
