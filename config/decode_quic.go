package config

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
