package config

import (
	"fmt"

	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// http3Keys are the entrypoint settings that only apply with http3 = true,
// as recorded in its where.
var http3Keys = []string{"http3_advertised_port", "allow_0rtt", "quic"}

// entrypointHTTP3 decodes http3 and the settings that go with it.
func (d *decoder) entrypointHTTP3(e *epDecl, s *scope) {
	var on bool
	s.boolean("http3", &on)
	h := &HTTP3Settings{}
	s.integer("http3_advertised_port", &h.AdvertisedPort)
	s.boolean("allow_0rtt", &h.Allow0RTT)
	for _, nb := range s.nested("quic") {
		e.w.pos["quic"] = posOf(nb.TypeRange)
		ns := d.scope(s.ctx+": quic", nb.Body, e.w, "quic.")
		ns.check(schema{attrs: []string{"max_incoming_streams", "retry_threshold"}})
		ns.integer("max_incoming_streams", &h.MaxIncomingStreams)
		ns.integer("retry_threshold", &h.RetryThreshold)
	}
	if on {
		e.HTTP3 = h
	}
}

func (d *decoder) quicRoute(b *hclsyntax.Block) {
	name, p, ok := d.named(b)
	if !ok {
		return
	}
	r := &routeDecl{Name: name, Pos: p, w: newWhere()}
	s := d.scope(fmt.Sprintf("quic_route %q", name), b.Body, r.w, "")
	s.check(schema{attrs: []string{"entrypoints", "sni", "service"}})
	r.Entrypoints = s.strList("entrypoints")
	r.SNI, r.sniAt = s.sniList("sni")
	s.str("service", &r.Service)
	d.out.quicRoutes = append(d.out.quicRoutes, r)
}
