package config

import (
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
	Entrypoints []Entrypoint `json:"entrypoints"`
	TCPRoutes   []TCPRoute   `json:"tcp_routes"`
	UDPRoutes   []UDPRoute   `json:"udp_routes"`
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

// Global holds process-wide settings (the `global` block).
type Global struct {
	// GracePeriod bounds how long shutdown waits for open connections and
	// flows to finish. Default 10s.
	GracePeriod time.Duration `json:"grace_period"`
}

// Log is the `log` block.
type Log struct {
	Level  string `json:"level"`  // debug | info | warn | error; default info
	Format string `json:"format"` // text | json; default text
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
	Pos      Pos `json:"-"`
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
	// Handshake bounds a TLS handshake (used once TLS lands). Default 10s.
	Handshake time.Duration `json:"handshake"`
	// ReadHeader bounds reading HTTP request headers (used once L7 lands).
	// Default 10s.
	ReadHeader time.Duration `json:"read_header"`
	// Idle closes a TCP connection on which no byte moved either way for
	// this long. Default 5m.
	Idle time.Duration `json:"idle"`
}

// TCPRoute is a `tcp_route "name"` block.
type TCPRoute struct {
	Name        string   `json:"name"`
	Entrypoints []string `json:"entrypoints"`
	Service     string   `json:"service"`
	Pos         Pos      `json:"-"`
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
	Pos         Pos           `json:"-"`
}

// Backend is a `backend "host:port"` block inside a service.
type Backend struct {
	Address string `json:"address"` // host:port
	Weight  int    `json:"weight"`  // > 0; default 1
	Pos     Pos    `json:"-"`
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
