package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// applyACMEDefaults fills the unwritten attributes of the acme blocks.
func applyACMEDefaults(c *decls) {
	for _, a := range c.tls.acme {
		if !a.w.has("directory") {
			a.Directory = DefaultACMEDirectory
		}
		if !a.w.has("storage") {
			a.Storage = DefaultACMEStorage
		}
		if !a.w.has("key_type") {
			a.KeyType = DefaultACMEKeyType
		}
		if !a.w.has("challenge") {
			a.Challenge = DefaultACMEChallenge
		}
		if od := a.OnDemand; od != nil {
			if !a.w.has("on_demand.rate") {
				od.Rate = DefaultOnDemandRate
			}
			if !a.w.has("on_demand.interval") {
				od.Interval = DefaultOnDemandInterval
			}
		}
	}
}

// acme checks the acme blocks and adds the routes' names to the one with
// auto = true.
func (v *validator) acme() {
	owner := map[string]*acmeDecl{} // domain -> the block managing it
	var auto, onDemand *acmeDecl
	for _, a := range v.c.tls.acme {
		ctx := fmt.Sprintf("tls: acme %q", a.Name)
		if a.w.ok("email") && (!strings.Contains(a.Email, "@") || strings.ContainsAny(a.Email, " \t<>")) {
			v.errf(a.w.pos["email"], "%s: email %q is not an address; write e.g. \"ops@example.com\", or leave email out", ctx, a.Email)
		}
		if a.w.ok("directory") {
			if u, err := url.Parse(a.Directory); err != nil || u.Scheme != "https" || u.Host == "" {
				v.errf(a.w.pos["directory"], "%s: directory %q: write the https URL of the CA's directory, e.g. %q", ctx, a.Directory, DefaultACMEDirectory)
			}
		}
		if a.w.ok("ca_file") && a.CAFile == "" {
			v.errf(a.w.pos["ca_file"], "%s: ca_file must not be empty; leave it out to trust the system roots", ctx)
		}
		if a.w.ok("storage") && a.Storage == "" {
			v.errf(a.w.pos["storage"], "%s: storage must not be empty; name a directory, e.g. %q", ctx, DefaultACMEStorage)
		}
		v.enum(ctx, a.w, "key_type", a.KeyType, acmeKeyTypes)
		v.enum(ctx, a.w, "challenge", a.Challenge, acmeChallenges)
		v.acmeDNS(ctx, a)
		v.positive(ctx, a.w, "renew_before", a.RenewBefore, false)
		if a.Auto {
			if auto != nil {
				v.errf(a.w.pos["auto"], "%s: acme %q (%s) already has auto = true; only one acme block can take the routes' names", ctx, auto.Name, auto.Pos)
			} else {
				auto = a
			}
		}
		if a.w.ok("domains") && len(a.Domains) == 0 {
			v.errf(a.w.pos["domains"], "%s: domains must not be empty; list names, or leave it out with auto = true", ctx)
		}
		if a.OnDemand != nil {
			if onDemand != nil {
				v.errf(a.w.pos["on_demand"], "%s: acme %q (%s) already has on_demand; only one acme block can issue at the first handshake", ctx, onDemand.Name, onDemand.Pos)
			}
			onDemand = a
			v.onDemand(ctx, a)
		}
		if !a.w.has("domains") && !a.Auto && a.OnDemand == nil {
			v.errf(a.Pos, "%s: no certificate to obtain: add domains = [\"example.com\"], auto = true or an on_demand block", ctx)
		}
		for i, d := range a.Domains {
			at := a.listedAt[i]
			if strings.HasPrefix(d, "*.") && a.Challenge != ChallengeDNS01 && slices.Contains(acmeChallenges, a.Challenge) {
				v.errf(at, "%s: wildcard %q needs challenge = %q: CAs prove a wildcard name through DNS only", ctx, d, ChallengeDNS01)
			}
			if prev := owner[d]; prev != nil {
				v.errf(at, "%s: %q is already managed by acme %q (%s); a name has one certificate, remove it from one block", ctx, d, prev.Name, prev.Pos)
				continue
			}
			owner[d] = a
		}
		if a.Challenge == ChallengeHTTP01 {
			v.acmeHTTP01(ctx, a)
		}
	}
	if auto != nil {
		for _, d := range v.autoDomains() {
			if owner[d] == nil {
				owner[d] = auto
				auto.Domains = append(auto.Domains, d)
			}
		}
	}
}

// onDemand checks the on_demand block of a.
func (v *validator) onDemand(ctx string, a *acmeDecl) {
	od := a.OnDemand
	ctx += ": on_demand"
	switch {
	case !a.w.has("on_demand.ask"):
		v.errf(a.w.pos["on_demand"], "%s: missing required attribute \"ask\": without an endpoint approving names, any client could have certificates issued; add ask = \"http://127.0.0.1:9000/allowed\"", ctx)
	case a.w.ok("on_demand.ask"):
		if u, err := url.Parse(od.Ask); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.errf(a.w.pos["on_demand.ask"], "%s: ask %q: write an http or https URL, e.g. \"http://127.0.0.1:9000/allowed\"", ctx, od.Ask)
		}
	}
	if a.w.ok("on_demand.rate") && od.Rate < 1 {
		v.errf(a.w.pos["on_demand.rate"], "%s: rate must be at least 1 order per interval, got %d", ctx, od.Rate)
	}
	v.positive(ctx, a.w, "on_demand.interval", od.Interval, false)
}

// acmeDNS checks dns_provider and dns_resolvers against the challenge.
func (v *validator) acmeDNS(ctx string, a *acmeDecl) {
	dns := a.Challenge == ChallengeDNS01
	switch {
	case dns && !a.w.has("dns_provider"):
		v.errf(a.w.at("challenge", a.Pos), "%s: challenge %q needs dns_provider, the lego name of the DNS host, e.g. dns_provider = \"cloudflare\"", ctx, ChallengeDNS01)
	case !a.w.ok("dns_provider"):
	case !dns && slices.Contains(acmeChallenges, a.Challenge):
		v.errf(a.w.pos["dns_provider"], "%s: dns_provider is used by challenge %q only; remove it or set challenge = %q", ctx, ChallengeDNS01, ChallengeDNS01)
	case !slices.Contains(dnsProviders, a.DNSProvider):
		hint := didYouMean(a.DNSProvider, dnsProviders)
		if hint == "" {
			hint = "; see https://go-acme.github.io/lego/dns/ for the names"
		}
		v.errf(a.w.pos["dns_provider"], "%s: unknown dns_provider %q%s", ctx, a.DNSProvider, hint)
	case !slices.Contains(dnsBuiltin, a.DNSProvider):
		v.errf(a.w.pos["dns_provider"], "%s: dns_provider %q is a lego provider that is not supported yet in proxynow; built in: %s",
			ctx, a.DNSProvider, strings.Join(dnsBuiltin, ", "))
	}
	if a.w.ok("dns_resolvers") {
		switch {
		case len(a.DNSResolvers) == 0:
			v.errf(a.w.pos["dns_resolvers"], "%s: dns_resolvers must not be empty; leave it out to use the system's resolvers", ctx)
		case !dns && slices.Contains(acmeChallenges, a.Challenge):
			v.errf(a.w.pos["dns_resolvers"], "%s: dns_resolvers is used by challenge %q only; remove it", ctx, ChallengeDNS01)
		}
	}
}

// acmeHTTP01 checks that an http-01 challenge has an entrypoint to be
// answered on, and warns when none listens on port 80, where CAs connect.
func (v *validator) acmeHTTP01(ctx string, a *acmeDecl) {
	eps := v.httpEntrypoints()
	if len(eps) == 0 {
		v.errf(a.w.at("challenge", a.Pos), "%s: challenge %q is answered on entrypoints with http_routes and there is none; add an http_route on a port 80 entrypoint, or use %q",
			ctx, ChallengeHTTP01, ChallengeTLSALPN01)
		return
	}
	for _, e := range eps {
		if hp, err := parseAddress(e.Address); err == nil && hp.port == 80 {
			return
		}
	}
	v.warnf(a.w.at("challenge", a.Pos), "%s: the CA validates challenge %q on port 80 and no entrypoint with http_routes listens there; fine when port 80 is mapped to one (a container or a NAT), else use %q",
		ctx, ChallengeHTTP01, ChallengeTLSALPN01)
}

// httpEntrypoints are the TCP entrypoints that http_routes name.
func (v *validator) httpEntrypoints() []*epDecl {
	var out []*epDecl
	for _, e := range v.c.entrypoints {
		if e.Network != NetworkTCP {
			continue
		}
		for _, r := range v.c.httpRoutes {
			if slices.Contains(r.Entrypoints, e.Name) {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

// autoDomains are the exact DNS names of the http_routes' hosts and of
// the terminate tcp_routes' sni, in load order, each once; IP addresses
// are left out.
func (v *validator) autoDomains() []string {
	var out []string
	add := func(names []string) {
		for _, n := range names {
			if _, err := netip.ParseAddr(n); err == nil || strings.HasPrefix(n, "*.") || slices.Contains(out, n) {
				continue
			}
			out = append(out, n)
		}
	}
	for _, r := range v.c.httpRoutes {
		add(r.m.Hosts)
	}
	for _, r := range v.c.tcpRoutes {
		if r.TLS == TLSTerminate {
			add(r.SNI)
		}
	}
	return out
}

// buildACME copies the acme blocks into the Config.
func buildACME(c *decls) []ACME {
	out := []ACME{}
	for _, a := range c.tls.acme {
		x := a.ACME
		x.Domains = slices.Clone(x.Domains)
		if x.Domains == nil {
			x.Domains = []string{}
		}
		out = append(out, x)
	}
	return out
}
