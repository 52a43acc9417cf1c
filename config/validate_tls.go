package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// backendServerName is the name a TLS backend is verified against: the
// service's server_name, else the backend's host unless that is an IP.
func backendServerName(t *BackendTLS, address string) string {
	if t.ServerName != "" {
		return t.ServerName
	}
	hp, err := parseAddress(address)
	if err != nil || hp.host == "" {
		return ""
	}
	if _, err := netip.ParseAddr(hp.host); err == nil {
		return ""
	}
	return strings.TrimSuffix(hp.host, ".")
}

// tls checks the top-level tls block. That the files load is checkFiles'
// job.
func (v *validator) tls() {
	t := &v.c.tls
	if t.w.ok("min_version") && slices.Contains(insecureTLSVersions, t.MinVersion) {
		v.errf(t.w.pos["min_version"], "tls: min_version %q: TLS 1.0 and 1.1 are insecure and not supported; use %q or %q",
			t.MinVersion, TLSVersion12, TLSVersion13)
	} else if t.w.ok("min_version") && !slices.Contains(tlsVersions, t.MinVersion) {
		// No "did you mean": "1.4" is as near to "1.2" as to "1.3".
		v.errf(t.w.pos["min_version"], "tls: unknown min_version %q; use %q or %q", t.MinVersion, TLSVersion12, TLSVersion13)
	}
	var def *certDecl
	for _, c := range t.certs {
		ctx := fmt.Sprintf("tls: certificate %q", c.Name)
		v.requiredPath(ctx, c.w, c.Pos, "cert_file", c.CertFile, "cert.pem")
		v.requiredPath(ctx, c.w, c.Pos, "key_file", c.KeyFile, "key.pem")
		if !c.Default {
			continue
		}
		if def != nil {
			v.errf(c.w.pos["default"], "%s: certificate %q (%s) is already the default; only one certificate can have default = true",
				ctx, def.Name, def.Pos)
			continue
		}
		def = c
	}
}

// requiredPath reports a file attribute that is missing or empty.
func (v *validator) requiredPath(ctx string, w where, p Pos, key, val, example string) {
	switch {
	case !w.has(key):
		v.errf(p, "%s: missing required attribute %q; add %s = %q", ctx, key, key, example)
	case w.ok(key) && val == "":
		v.errf(w.pos[key], "%s: %s must not be empty; name a PEM file", ctx, key)
	}
}

// routeTLS checks the sni, alpn and tls attributes of a tcp_route.
func (v *validator) routeTLS(r *routeDecl) {
	ctx := fmt.Sprintf("tcp_route %q", r.Name)
	if r.w.ok("sni") && len(r.SNI) == 0 {
		v.errf(r.w.pos["sni"], "%s: sni must not be empty; leave it out to match any server name", ctx)
	}
	if r.w.ok("alpn") && len(r.ALPN) == 0 {
		v.errf(r.w.pos["alpn"], "%s: alpn must not be empty; leave it out to match any protocol", ctx)
	}
	v.passthroughBackends(ctx, r)
	if !r.w.ok("tls") {
		return
	}
	switch r.TLS {
	case TLSNone:
		if what := sniALPN(r); what != "" {
			verb := "needs TLS: it is"
			if strings.Contains(what, " and ") {
				verb = "need TLS: they are"
			}
			v.errf(r.w.pos["tls"], "%s: %s %s read from the TLS ClientHello, and tls = %q takes connections that are not TLS; use %q or %q, or remove %s",
				ctx, what, verb, TLSNone, TLSPassthrough, TLSTerminate, what)
		}
	case TLSTerminate:
		if len(v.c.tls.certs) == 0 && len(v.c.tls.acme) == 0 {
			v.errf(r.w.pos["tls"], "%s: tls = %q needs a certificate: add a tls { certificate \"name\" { ... } } or tls { acme \"name\" { ... } } block", ctx, TLSTerminate)
		}
	}
}

// passthroughBackends reports a passthrough route whose service has a
// tls:// backend: the client's TLS bytes would go inside a second TLS
// connection that no TLS server expects (the backend answers the inner
// ClientHello as application data and the client sees garbage). tls://
// re-encrypts what proxynow decrypted, so it pairs with "terminate".
func (v *validator) passthroughBackends(ctx string, r *routeDecl) {
	s := v.svcs[r.Service]
	if r.TLS != TLSPassthrough || s == nil {
		return
	}
	i := slices.IndexFunc(s.backends, func(b *backendDecl) bool { return b.scheme == SchemeTLS })
	if i < 0 {
		return
	}
	v.errf(r.w.at("tls", r.w.pos["service"]), "%s: tls = %q sends the client's TLS bytes untouched, and service %q's backend %q would wrap them in a second TLS connection; write the backend as %q, or use tls = %q to decrypt and re-encrypt",
		ctx, TLSPassthrough, r.Service, s.backends[i].label, s.backends[i].Address, TLSTerminate)
}

// sniALPN names the matching attributes r has: "sni", "alpn", "sni and
// alpn" or "".
func sniALPN(r *routeDecl) string {
	var what []string
	for _, k := range []string{"sni", "alpn"} {
		if r.w.has(k) {
			what = append(what, k)
		}
	}
	return strings.Join(what, " and ")
}

// tcpOverlaps reports tcp_routes that could match the same connection on
// one entrypoint (see TCPRoute): two routes for connections that are not
// TLS, or two TLS routes with the same SNI entry (the same exact name, the
// same wildcard, or both without sni) whose ALPN lists overlap (both
// without alpn, or sharing a protocol). The first route in load order
// keeps the match; each later one is reported once per entry.
func (v *validator) tcpOverlaps() {
	plain := map[string]*routeDecl{}  // entrypoint -> route with tls = "none"
	owners := map[string]*routeDecl{} // entrypoint, sni, alpn -> TLS route
	reported := map[string]bool{}
	for _, r := range v.c.tcpRoutes {
		if !r.w.ok("entrypoints") || !r.w.ok("tls") && r.w.has("tls") || r.w.bad["sni"] || r.w.bad["alpn"] ||
			r.TLS == TLSNone && sniALPN(r) != "" {
			continue // already reported
		}
		for i, ep := range r.Entrypoints {
			e := v.eps[ep]
			if e == nil || e.Network != NetworkTCP || slices.Index(r.Entrypoints, ep) < i {
				continue
			}
			epAt := r.w.at(fmt.Sprintf("entrypoints.%d", i), r.w.pos["entrypoints"])
			if r.TLS == TLSNone {
				if prev := plain[ep]; prev != nil {
					v.errf(epAt, "tcp_route %q: entrypoint %q already has catch-all tcp_route %q (%s) for connections that are not TLS; only one can match, remove one or use another entrypoint",
						r.Name, ep, prev.Name, prev.Pos)
					continue
				}
				plain[ep] = r
				continue
			}
			v.tlsOverlaps(r, ep, epAt, owners, reported)
		}
	}
}

// tlsOverlaps registers the SNI and ALPN entries of TLS route r on
// entrypoint ep and reports those another route already has.
func (v *validator) tlsOverlaps(r *routeDecl, ep string, epAt Pos, owners map[string]*routeDecl, reported map[string]bool) {
	snis, sniAt := r.SNI, r.sniAt
	if len(snis) == 0 {
		snis, sniAt = []string{""}, []Pos{epAt} // "" stands for no sni
	}
	alpns := r.ALPN
	if len(alpns) == 0 {
		alpns = []string{""} // "" stands for no alpn; a real one is never empty
	}
	for j, name := range snis {
		for _, proto := range alpns {
			k := ep + "\x00" + name + "\x00" + proto
			prev := owners[k]
			if prev == nil {
				owners[k] = r
				continue
			}
			once := r.Name + "\x00" + name + "\x00" + prev.Name
			if reported[once] {
				continue
			}
			reported[once] = true
			forALPN := ""
			if proto != "" {
				forALPN = fmt.Sprintf(" for alpn %q", proto)
			}
			if name == "" {
				v.errf(sniAt[j], "tcp_route %q: entrypoint %q already has TLS catch-all tcp_route %q (%s)%s; only one can match, add sni or alpn to one of them, or use another entrypoint",
					r.Name, ep, prev.Name, prev.Pos, forALPN)
				continue
			}
			fix := "remove the name from one of them"
			if proto != "" {
				fix = "remove the name or the alpn value from one of them"
			}
			v.errf(sniAt[j], "tcp_route %q: sni %q%s on entrypoint %q is already routed by tcp_route %q (%s); only one can match, %s",
				r.Name, name, forALPN, ep, prev.Name, prev.Pos, fix)
		}
	}
}

// serviceTLS checks the tls block of a service.
func (v *validator) serviceTLS(ctx string, s *serviceDecl) {
	if !s.w.has("tls") || s.TLS == nil || s.w.has("respond") {
		return
	}
	if !slices.ContainsFunc(s.backends, func(b *backendDecl) bool { return b.TLS }) {
		v.warnf(s.w.pos["tls"], "%s: the tls block applies to tls:// and https:// backends only and this service has none; write backend \"tls://host:port\" or \"https://host:port\", or remove the block", ctx)
	}
	if s.w.ok("tls.ca_file") && s.TLS.CAFile == "" {
		v.errf(s.w.pos["tls.ca_file"], "%s: tls: ca_file must not be empty; leave it out to use the system roots", ctx)
	}
	if s.TLS.InsecureSkipVerify && s.w.has("tls.ca_file") {
		v.warnf(s.w.pos["tls.ca_file"], "%s: tls: ca_file has no effect with insecure_skip_verify = true", ctx)
	}
}
