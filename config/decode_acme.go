package config

import (
	"fmt"
	"net"
	"strings"

	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// acmeDecl is a decoded acme block. Domains holds the names written, at
// listedAt, until validation appends the auto ones.
type acmeDecl struct {
	ACME
	listedAt []Pos
	w        where
}

var (
	acmeChallenges = []string{ChallengeHTTP01, ChallengeTLSALPN01, ChallengeDNS01}
	acmeKeyTypes   = []string{KeyEC256, KeyEC384, KeyRSA2048, KeyRSA3072, KeyRSA4096}
)

// acmeBlock decodes one `acme "name"` block of the tls block.
func (d *decoder) acmeBlock(b *hclsyntax.Block) {
	if !d.labels(b, "tls", 1) {
		return
	}
	name, p := b.Labels[0], posOf(b.LabelRanges[0])
	if !d.first("acme", name, p, fmt.Sprintf("acme %q", name)) {
		return
	}
	a := &acmeDecl{ACME: ACME{Name: name, Pos: p}, w: newWhere()}
	s := d.scope(fmt.Sprintf("tls: acme %q", name), b.Body, a.w, "")
	s.check(schema{
		attrs: []string{"email", "directory", "ca_file", "key_type", "challenge", "dns_provider", "dns_resolvers",
			"storage", "domains", "auto", "renew_before"},
		blocks: []string{"on_demand"},
	})
	s.str("email", &a.Email)
	s.str("directory", &a.Directory)
	if s.str("ca_file", &a.CAFile) {
		a.CAFile = d.path(a.CAFile)
	}
	s.str("key_type", &a.KeyType)
	s.str("challenge", &a.Challenge)
	s.str("dns_provider", &a.DNSProvider)
	a.DNSResolvers, _ = s.normList("dns_resolvers", "port 53 is the default", resolverAddr)
	if s.str("storage", &a.Storage) {
		a.Storage = d.path(a.Storage)
	}
	a.Domains, a.listedAt = s.sniList("domains")
	s.boolean("auto", &a.Auto)
	s.duration("renew_before", &a.RenewBefore)
	for _, nb := range s.nested("on_demand") {
		a.OnDemand = &OnDemand{}
		a.w.pos["on_demand"] = posOf(nb.TypeRange)
		ns := d.scope(s.ctx+": on_demand", nb.Body, a.w, "on_demand.")
		ns.check(schema{attrs: []string{"ask", "rate", "interval"}})
		ns.str("ask", &a.OnDemand.Ask)
		ns.integer("rate", &a.OnDemand.Rate)
		ns.duration("interval", &a.OnDemand.Interval)
	}
	d.out.tls.acme = append(d.out.tls.acme, a)
}

// resolverAddr normalises a DNS resolver to host:port, port 53 when none
// is written.
func resolverAddr(s string) (string, string) {
	if s == "" {
		return "", ": an address must not be empty"
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if strings.Contains(err.Error(), "missing port") {
			return net.JoinHostPort(strings.Trim(s, "[]"), "53"), ""
		}
		return "", ": write host:port, e.g. \"1.1.1.1:53\""
	}
	if host == "" || port == "" {
		return "", ": write host:port, e.g. \"1.1.1.1:53\""
	}
	return net.JoinHostPort(host, port), ""
}
