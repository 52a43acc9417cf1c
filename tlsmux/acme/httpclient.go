package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// httpClient is the client toward a CA: the system roots plus caFile's,
// bounded timeouts (a CA that stalls must not hold an issuance forever),
// and every request tied to ctx so that Close aborts them (lego's calls
// take no context).
func httpClient(ctx context.Context, caFile string) (*http.Client, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		if !roots.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("ca_file %q holds no PEM certificate", caFile)
		}
	}
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
	}
	return &http.Client{Timeout: 2 * time.Minute, Transport: ctxTransport{ctx: ctx, rt: t}}, nil
}

// ctxTransport runs every request under ctx.
type ctxTransport struct {
	ctx context.Context
	rt  *http.Transport
}

func (c ctxTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Context() == context.Background() {
		r = r.WithContext(c.ctx)
	}
	return c.rt.RoundTrip(r)
}
