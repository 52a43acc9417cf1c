package config

// HTTP3Settings are the HTTP/3 settings of a TCP entrypoint with
// `http3 = true`: a QUIC listener on the UDP port with the same number,
// serving the entrypoint's http_routes with the same certificates. The
// handshake and idle timeouts are the entrypoint's timeouts.handshake and
// timeouts.idle, the header limit its max_header_bytes.
type HTTP3Settings struct {
	// AdvertisedPort is the port in the Alt-Svc header of HTTP/1.1 and
	// HTTP/2 responses (`http3_advertised_port`), for deployments behind
	// port mapping; 0 (default) advertises the bound port.
	AdvertisedPort int `json:"advertised_port,omitempty"`
	// Allow0RTT (`allow_0rtt`) accepts early data from resuming clients:
	// GET, HEAD and OPTIONS go on with "Early-Data: 1", other methods get
	// 425 (RFC 8470). Default false.
	Allow0RTT bool `json:"allow_0rtt"`
	// MaxIncomingStreams (`quic { max_incoming_streams }`) bounds the
	// concurrent requests of one connection. Default 100.
	MaxIncomingStreams int `json:"max_incoming_streams"`
	// RetryThreshold (`quic { retry_threshold }`) is the number of
	// handshakes in progress from which new clients must prove their
	// address with a Retry round trip (RFC 9000 §8.1.2); 0 validates every
	// client. Default 128.
	RetryThreshold int `json:"retry_threshold"`
}

// SchemeH3 is the scheme of h3://host:port backends: HTTP/3 over QUIC,
// verified like https:// backends (the service's tls block).
const SchemeH3 = "h3"

// Defaults of HTTP3Settings.
const (
	DefaultMaxIncomingStreams = 100
	DefaultRetryThreshold     = 128
)

// QUICRoute is a `quic_route "name"` block: QUIC connections to an http3
// entrypoint's UDP port whose ClientHello names one of SNI are relayed,
// still encrypted, to a backend of Service (passthrough); the rest go to
// the entrypoint's HTTP/3 server. SNI entries are exact names or
// one-label wildcards ("*.example.com"), lower case, without a trailing
// dot; no two quic_routes on an entrypoint share one.
type QUICRoute struct {
	Name        string   `json:"name"`
	Entrypoints []string `json:"entrypoints"`
	SNI         []string `json:"sni"`
	// Service has plain host:port backends: UDP, datagrams untouched.
	Service string `json:"service"`
	Pos     Pos    `json:"-"`
}
