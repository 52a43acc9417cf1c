package config

import (
	"fmt"
	"slices"
)

// Bounds of the quic block.
const maxMaxIncomingStreams = 10000

func applyHTTP3Defaults(c *decls) {
	for _, e := range c.entrypoints {
		if h := e.HTTP3; h != nil {
			if !e.w.has("quic.max_incoming_streams") {
				h.MaxIncomingStreams = DefaultMaxIncomingStreams
			}
			if !e.w.has("quic.retry_threshold") {
				h.RetryThreshold = DefaultRetryThreshold
			}
		}
	}
}

// entrypointHTTP3 checks http3 and its settings: QUIC always uses TLS, so
// the entrypoint must be able to terminate it, and the UDP port must be
// free of udp entrypoints.
func (v *validator) entrypointHTTP3(ctx string, e *epDecl, udpBound map[string]*epDecl) {
	h := e.HTTP3
	if h == nil {
		for _, k := range http3Keys {
			if e.w.has(k) {
				v.errf(e.w.pos[k], "%s: %s applies only with http3 = true", ctx, k)
			}
		}
		return
	}
	at := e.w.at("http3", e.Pos)
	switch {
	case e.Network == NetworkUDP:
		v.errf(at, "%s: http3 applies to tcp entrypoints (it opens the UDP port of the same number itself); remove it", ctx)
		return
	case len(v.c.tls.certs) == 0 && len(v.c.tls.acme) == 0:
		v.errf(at, "%s: http3 needs a certificate, QUIC always uses TLS; add tls { certificate \"NAME\" { ... } } or tls { acme \"NAME\" { ... } }", ctx)
	case !v.hasHTTPRoute(e.Name):
		// HTTP/3 serves the entrypoint's http_routes; without one it would
		// have nothing to serve (and quic_routes nothing to share with).
		v.errf(at, "%s: http3 serves this entrypoint's http_routes and none names it; add an http_route with entrypoints = [%q]", ctx, e.Name)
	}
	v.between(ctx, e.w, "http3_advertised_port", h.AdvertisedPort, 1, 65535)
	v.between(ctx+": quic", e.w, "quic.max_incoming_streams", h.MaxIncomingStreams, 1, maxMaxIncomingStreams)
	v.between(ctx+": quic", e.w, "quic.retry_threshold", h.RetryThreshold, 0, 0)
	if !e.w.ok("address") {
		return
	}
	hp, err := parseAddress(e.Address)
	if err != nil || hp.port == 0 {
		return
	}
	if other := udpBound[hp.listenKey(NetworkUDP)]; other != nil {
		v.errf(at, "%s: http3 needs UDP port %d, which udp entrypoint %q (%s) binds; use another port for one of them",
			ctx, hp.port, other.Name, other.w.at("address", other.Pos))
	}
}

func (v *validator) hasHTTPRoute(ep string) bool {
	for _, r := range v.c.httpRoutes {
		if slices.Contains(r.Entrypoints, ep) {
			return true
		}
	}
	return false
}

// http3Entrypoints runs entrypointHTTP3 on every entrypoint, once all of
// them are known.
func (v *validator) http3Entrypoints() {
	udpBound := map[string]*epDecl{}
	for _, e := range v.c.entrypoints {
		if e.Network != NetworkUDP || !e.w.ok("address") {
			continue
		}
		if hp, err := parseAddress(e.Address); err == nil && hp.port != 0 {
			udpBound[hp.listenKey(NetworkUDP)] = e
		}
	}
	for _, e := range v.c.entrypoints {
		v.entrypointHTTP3(fmt.Sprintf("entrypoint %q", e.Name), e, udpBound)
	}
}

// quicRoutes checks every quic_route: the common route checks (with
// entrypoints that must be tcp with http3 = true: the route shares their
// UDP port), a required SNI list, a service of plain host:port backends
// (datagrams are relayed untouched, so neither tls:// nor a PROXY header
// fits), and no SNI entry twice on one entrypoint.
func (v *validator) quicRoutes() {
	owners := map[string]*routeDecl{} // entrypoint + " " + sni -> route
	for _, r := range v.c.quicRoutes {
		ctx := fmt.Sprintf("quic_route %q", r.Name)
		if !quicPassthroughReady {
			v.errf(r.Pos, "%s: QUIC passthrough is not supported yet; remove the quic_route", ctx)
		}
		v.route("quic_route", NetworkTCP, r)
		switch {
		case !r.w.has("sni"):
			v.errf(r.Pos, "%s: missing required attribute \"sni\"; list the server names to pass through, e.g. sni = [\"app.example.com\"]", ctx)
		case r.w.ok("sni") && len(r.SNI) == 0:
			v.errf(r.w.pos["sni"], "%s: sni must not be empty; list the server names to pass through", ctx)
		}
		if s := v.svcs[r.Service]; r.w.ok("service") && s != nil && serviceLayer(s) == layerL4 {
			for _, b := range s.backends {
				if b.scheme != SchemeTCP {
					v.errf(b.Pos, "service %q: backend %q: quic_route %q relays QUIC datagrams untouched; use a plain host:port backend", s.Name, b.label, r.Name)
				}
			}
			if s.ProxyProtocol != "" {
				v.errf(s.w.pos["proxy_protocol"], "service %q: proxy_protocol is not supported on the backends of quic_route %q; remove it", s.Name, r.Name)
			}
		}
		if !r.w.ok("entrypoints") {
			continue
		}
		for i, name := range r.Entrypoints {
			e := v.eps[name]
			if e == nil || slices.Index(r.Entrypoints, name) < i || e.Network != NetworkTCP {
				continue
			}
			at := r.w.at(fmt.Sprintf("entrypoints.%d", i), r.w.pos["entrypoints"])
			if e.HTTP3 == nil {
				v.errf(at, "%s: entrypoint %q has no http3 = true; a quic_route shares the UDP port of an http3 entrypoint", ctx, name)
				continue
			}
			for j, sni := range r.SNI {
				k := name + " " + sni
				if prev := owners[k]; prev != nil && prev != r {
					v.errf(r.sniAt[j], "%s: sni %q on entrypoint %q is already routed by quic_route %q (%s); only one can match", ctx, sni, name, prev.Name, prev.Pos)
					continue
				}
				owners[k] = r
			}
		}
	}
}

// quicPassthroughReady gates quic_route on the runtime's QUIC
// demultiplexer (quic.Demux): false refuses every quic_route.
const quicPassthroughReady = true

func buildQUICRoutes(c *decls) []QUICRoute {
	out := []QUICRoute{}
	for _, r := range c.quicRoutes {
		out = append(out, QUICRoute{Name: r.Name, Entrypoints: r.Entrypoints, SNI: r.SNI, Service: r.Service, Pos: r.Pos})
	}
	return out
}
