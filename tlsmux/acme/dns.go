package acme

import (
	"fmt"

	"github.com/go-acme/lego/v4/challenge/dns01"
	"github.com/go-acme/lego/v4/lego"

	"github.com/proxynow/proxynow/config"
)

// setDNS01 sets up dns-01 with the lego provider named in cfg; it reads
// its credentials from the environment variables lego documents for it.
// With dns_resolvers, the TXT record must be visible through them before
// the CA is asked to look, and the zone's authoritative servers are not
// queried directly (they may be unreachable from here: split DNS, a
// private zone, a test DNS server), as lego's --dns.resolvers with
// --dns.propagation-disable-ans does. lego keeps the resolvers in a
// package variable: two acme blocks with different dns_resolvers share the
// last one set.
func setDNS01(client *lego.Client, cfg *config.ACME) error {
	newProvider := dnsProviders[cfg.DNSProvider]
	if newProvider == nil {
		return fmt.Errorf("dns_provider %q is not built in", cfg.DNSProvider)
	}
	p, err := newProvider()
	if err != nil {
		return fmt.Errorf("dns_provider %q: %w", cfg.DNSProvider, err)
	}
	custom := len(cfg.DNSResolvers) > 0
	return client.Challenge.SetDNS01Provider(p,
		dns01.CondOption(custom, dns01.AddRecursiveNameservers(cfg.DNSResolvers)),
		dns01.CondOption(custom, dns01.RecursiveNSsPropagationRequirement()),
		dns01.CondOption(custom, dns01.DisableAuthoritativeNssPropagationRequirement()))
}
