package upstream

import (
	"context"
	"net/http"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// probeH3 checks an h3:// backend over a fresh QUIC connection, closed
// after the probe, for the reason probeTransport gives for TCP: a probe
// must see what new traffic would.
func (p *Pool) probeH3(ctx context.Context, t *probeTarget) error {
	tc := t.tls.Clone()
	tc.NextProtos = nil // http3 offers h3
	tr := &http3.Transport{
		TLSClientConfig:    tc,
		QUICConfig:         &quic.Config{HandshakeIdleTimeout: p.health.Timeout, MaxIdleTimeout: p.health.Timeout},
		DisableCompression: true,
	}
	defer tr.Close()
	return p.probeHTTP(ctx, roundTripperFunc(tr.RoundTrip), t)
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
