package config

import "fmt"

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
	case len(v.c.tls.certs) == 0:
		v.errf(at, "%s: http3 needs a certificate, QUIC always uses TLS; add tls { certificate \"NAME\" { ... } }", ctx)
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
