package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// hostPort is a parsed "host:port" address.
type hostPort struct {
	host string // "" for all interfaces; IPs in canonical form
	port int
}

// parseAddress parses a listen or dial address of the forms ":8080",
// "127.0.0.1:8080", "[::1]:53" and "localhost:80". Port 0 is accepted here;
// callers that dial reject it.
func parseAddress(s string) (hostPort, error) {
	if s == "" {
		return hostPort{}, errors.New(`address is empty; use host:port, e.g. ":8080"`)
	}
	if strings.Contains(s, "://") {
		return hostPort{}, errors.New("URLs are not addresses; use host:port")
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return hostPort{}, errors.New(ae.Err)
		}
		return hostPort{}, err
	}
	if p == "" {
		return hostPort{}, errors.New("missing port number after the colon")
	}
	for _, c := range p {
		if c < '0' || c > '9' {
			return hostPort{}, fmt.Errorf("port %q is not a number", p)
		}
	}
	port, err := strconv.Atoi(p)
	if err != nil || port > 65535 {
		return hostPort{}, fmt.Errorf("port %s is out of range 0..65535", p)
	}
	host, err := canonicalHost(h)
	if err != nil {
		return hostPort{}, err
	}
	return hostPort{host: host, port: port}, nil
}

func canonicalHost(h string) (string, error) {
	if h == "" {
		return "", nil
	}
	if a, err := netip.ParseAddr(h); err == nil {
		return a.String(), nil
	}
	if strings.Contains(h, ":") {
		return "", fmt.Errorf("invalid IPv6 address %q", h)
	}
	if !validHostname(h) {
		return "", fmt.Errorf("invalid host %q", h)
	}
	return strings.ToLower(h), nil
}

// validHostname accepts DNS names (RFC 1123 labels, plus '_' which real
// service names use). A name whose last label is all digits would be a
// mistyped IPv4 address, so it is refused.
func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
			if !ok {
				return false
			}
		}
	}
	last := labels[len(labels)-1]
	return strings.Trim(last, "0123456789") != ""
}

// listenKey identifies the socket an entrypoint binds: the wildcard forms
// ":8080", "0.0.0.0:8080" and "[::]:8080" all bind every interface (Go
// listens dual-stack), so they share one key.
func (hp hostPort) listenKey(network string) string {
	h := hp.host
	if h == "0.0.0.0" || h == "::" {
		h = ""
	}
	return network + " " + net.JoinHostPort(h, strconv.Itoa(hp.port))
}
