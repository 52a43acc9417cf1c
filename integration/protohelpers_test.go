//go:build linux

package integration

// Helpers for the proto_*_test.go files (WebSocket, gRPC and h2spec through
// an HTTP entrypoint): a proxynow with one catch-all http_route, optionally
// with a TLS certificate from a fresh CA, and loopback HTTP backends.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

// protoServerName is the name in the certificate proxynow serves.
const protoServerName = "proxy.test"

// protoProxy is a running proxynow with a single HTTP entrypoint "web".
type protoProxy struct {
	proc *proc
	addr string  // host:port of entrypoint "web"
	ca   *testCA // nil without TLS
}

// tlsConfig is a client config trusting the proxy's CA; alpn sets NextProtos.
func (p *protoProxy) tlsConfig(alpn ...string) *tls.Config {
	return &tls.Config{RootCAs: p.ca.pool(), ServerName: protoServerName, NextProtos: alpn}
}

// startProtoProxy starts proxynow with entrypoint "web" on 127.0.0.1:0, an
// http_route sending every request to service "svc" whose body is
// serviceBody (e.g. `backend "h2c://127.0.0.1:1" {}` or a respond block).
// With withTLS the entrypoint also terminates TLS with a certificate for
// protoServerName, marked default so that clients without SNI (h2spec
// dialing an IP) get it too. Its admin endpoint (metrics) is on a loopback
// port of its own.
func startProtoProxy(t testing.TB, withTLS bool, serviceBody string) *protoProxy {
	t.Helper()
	pp := &protoProxy{}
	tlsBlock := ""
	if withTLS {
		pp.ca = newTestCA(t, "proto")
		leaf := pp.ca.issue(t, t.TempDir(), "proxy", protoServerName)
		tlsBlock = fmt.Sprintf(`
tls {
  certificate "proxy" {
    cert_file = %q
    key_file  = %q
    default   = true
  }
}
`, leaf.certFile, leaf.keyFile)
	}
	hcl := fmt.Sprintf(`
admin {
  address = "127.0.0.1:0"
}
entrypoint "web" {
  address = "127.0.0.1:0"
}
%s
http_route "all" {
  entrypoints = ["web"]
  path_prefix = "/"
  service     = "svc"
}

service "svc" {
  %s
}
`, tlsBlock, serviceBody)
	pp.proc = startProxy(t, hcl)
	pp.addr = pp.proc.addr("web")
	return pp
}

// startProtoHTTPBackend serves h (HTTP/1.1, plaintext) on a loopback port
// and returns its host:port. The server is closed in t.Cleanup, hijacked
// connections included (handlers must end when their connection closes).
func startProtoHTTPBackend(t testing.TB, h http.Handler) string {
	t.Helper()
	return serveProtoHTTP(t, &http.Server{Handler: h, ReadHeaderTimeout: ioTimeout})
}

// serveProtoHTTP is startProtoHTTPBackend with the server given.
func serveProtoHTTP(t testing.TB, srv *http.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("backend serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
		<-done
	})
	return ln.Addr().String()
}

// protoCtx is a context bounded by ioTimeout, cancelled in t.Cleanup.
func protoCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	t.Cleanup(cancel)
	return ctx
}
