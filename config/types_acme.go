package config

import "time"

// ACME challenge types (RFC 8555 section 8, RFC 8737).
const (
	// ChallengeHTTP01 is answered at /.well-known/acme-challenge/ on every
	// entrypoint with http_routes; the CA connects to port 80.
	ChallengeHTTP01 = "http-01"
	// ChallengeTLSALPN01 is answered by the TLS multiplexer of every TCP
	// entrypoint for ClientHellos offering "acme-tls/1"; the CA connects
	// to port 443.
	ChallengeTLSALPN01 = "tls-alpn-01"
	// ChallengeDNS01 publishes a TXT record through a lego DNS provider;
	// the only challenge that can prove a wildcard name.
	ChallengeDNS01 = "dns-01"
)

// ACME key types of the certificates' private keys.
const (
	KeyEC256   = "ec256"
	KeyEC384   = "ec384"
	KeyRSA2048 = "rsa2048"
	KeyRSA3072 = "rsa3072"
	KeyRSA4096 = "rsa4096"
)

// ACME defaults.
const (
	// DefaultACMEDirectory is Let's Encrypt's production directory.
	DefaultACMEDirectory = "https://acme-v02.api.letsencrypt.org/directory"
	DefaultACMEStorage   = "/var/lib/proxynow/acme"
	DefaultACMEChallenge = ChallengeTLSALPN01
	DefaultACMEKeyType   = KeyEC256
)

// ACME is an `acme "name"` block of the tls block: certificates obtained
// and renewed from an ACME CA. Several may coexist (different CAs or
// challenges); a name is managed by at most one of them.
type ACME struct {
	Name string `json:"name"`
	// Email is the account's contact address; "" registers without one.
	Email string `json:"email,omitempty"`
	// Directory is the CA's directory URL (https). Default
	// DefaultACMEDirectory.
	Directory string `json:"directory"`
	// CAFile is a PEM bundle trusted, in addition to the system roots, for
	// the connections to Directory (a private CA such as step-ca or
	// pebble); "" trusts the system roots only. Its path is resolved like
	// Certificate.CertFile.
	CAFile string `json:"ca_file,omitempty"`
	// KeyType is the certificates' key: KeyEC256 (default), KeyEC384 or
	// an RSA size.
	KeyType string `json:"key_type"`
	// Challenge is ChallengeHTTP01, ChallengeTLSALPN01 (default) or
	// ChallengeDNS01.
	Challenge string `json:"challenge"`
	// DNSProvider is a lego DNS provider name (dns-01 only); its
	// credentials come from the environment variables lego documents.
	DNSProvider string `json:"dns_provider,omitempty"`
	// DNSResolvers are host:port resolvers the TXT record's propagation is
	// checked against (dns-01 only); empty: the system's.
	DNSResolvers []string `json:"dns_resolvers,omitempty"`
	// Storage is the directory holding the account key and certificates
	// (created 0700, files 0600). Default DefaultACMEStorage.
	Storage string `json:"storage"`
	// Domains are the names to obtain certificates for, one certificate
	// per name, lower case: those written, then with Auto those taken
	// from the routes.
	Domains []string `json:"domains"`
	// Auto adds every exact host of the http_routes and every exact sni
	// of the terminate tcp_routes to Domains.
	Auto bool `json:"auto,omitempty"`
	// RenewBefore renews a certificate this long before it expires; 0
	// (default) follows the CA's renewal information (ARI) when it offers
	// it, else renews when a third of the lifetime is left.
	RenewBefore time.Duration `json:"renew_before,omitempty"`
	// OnDemand, when set, also issues at the first handshake for names
	// that are not listed, when its ask endpoint approves them.
	OnDemand *OnDemand `json:"on_demand,omitempty"`
	Pos      Pos       `json:"-"`
}

// OnDemand is the `on_demand` block of an acme block (Caddy's on-demand
// TLS): a handshake for an unknown name waits while the certificate is
// obtained.
type OnDemand struct {
	// Ask is an http(s) URL asked GET Ask?domain=NAME before any order;
	// only a 200 answer approves the name.
	Ask string `json:"ask"`
	// Rate is how many orders at most start per Interval (a token bucket
	// of Rate tokens, refilled over Interval). Default 10.
	Rate     int           `json:"rate"`
	Interval time.Duration `json:"interval"` // default 1m
}

// On-demand defaults.
const (
	DefaultOnDemandRate     = 10
	DefaultOnDemandInterval = time.Minute
)

// DNSProviders returns the lego DNS provider names dns_provider accepts.
func DNSProviders() []string { return append([]string(nil), dnsProviders...) }
