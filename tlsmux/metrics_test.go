package tlsmux

import (
	"crypto/tls"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestHandshakeMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	met := NewMetrics(reg)
	ca, proxyCA := newCA(t), newCA(t)
	dir := t.TempDir()
	certFile, keyFile := proxyCA.issue(t, dir, "ecdsa", "b.test")
	certs, err := NewCertStore([]CertSource{{Name: "b", CertFile: certFile, KeyFile: keyFile}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	met.SetCertStore(certs)
	addr, _ := startMux(t, Options{
		Entrypoint: "e", Certs: certs, Metrics: met,
		Routes: []Route{
			{Name: "a", SNI: []string{"a.test"}, Mode: Passthrough, Handler: proxyTo(t, tlsBackend(t, ca, "a.test", "a:"))},
			{Name: "b", SNI: []string{"b.test"}, Mode: Terminate, Handler: proxyTo(t, serve(t, listen(t), echoTagged("b:")))},
		},
	})
	c, err := dialTLS(t, addr, &tls.Config{ServerName: "a.test", RootCAs: ca.pool})
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "x")
	c, err = dialTLS(t, addr, &tls.Config{ServerName: "b.test", RootCAs: proxyCA.pool, MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "x")
	if _, err := dialTLS(t, addr, &tls.Config{ServerName: "other.test", RootCAs: ca.pool}); err == nil {
		t.Fatal("a handshake for an unknown name succeeded")
	}
	// A client that does not trust the proxy's certificate fails the
	// terminating handshake.
	if _, err := dialTLS(t, addr, &tls.Config{ServerName: "b.test", RootCAs: ca.pool}); err == nil {
		t.Fatal("a handshake with an untrusted certificate succeeded")
	}
	nc := dialPlain(t, addr)
	nc.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	nc.Read(make([]byte, 16))

	count := func(kind, result, version string) float64 {
		return testutil.ToFloat64(met.handshakes.WithLabelValues("e", kind, result, version))
	}
	deadline := time.Now().Add(5 * time.Second)
	for count(kindTerminate, resultError, "unknown")+count(kindUnrouted, resultBadHello, "unknown") < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	tests := []struct {
		kind, result, version string
		want                  float64
	}{
		{kindPassthrough, resultOK, "1.3", 1},
		{kindTerminate, resultOK, "1.2", 1},
		{kindTerminate, resultError, "unknown", 1},
		{kindUnrouted, resultNoRoute, "1.3", 1},
		{kindUnrouted, resultBadHello, "unknown", 1},
	}
	for _, tc := range tests {
		if got := count(tc.kind, tc.result, tc.version); got != tc.want {
			t.Errorf("handshakes{%s %s %s} = %v, want %v", tc.kind, tc.result, tc.version, got, tc.want)
		}
	}
	if n := testutil.CollectAndCount(met.duration); n != 1 {
		t.Errorf("handshake duration series: %d, want 1", n)
	}
	leaf, _ := certs.GetCertificate(&tls.ClientHelloInfo{ServerName: "b.test"})
	want := `
# HELP proxynow_tls_certificate_expiry_timestamp_seconds NotAfter of each served certificate, in Unix seconds.
# TYPE proxynow_tls_certificate_expiry_timestamp_seconds gauge
proxynow_tls_certificate_expiry_timestamp_seconds{certificate="b"} ` + formatFloat(float64(leaf.Leaf.NotAfter.Unix())) + "\n"
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "proxynow_tls_certificate_expiry_timestamp_seconds"); err != nil {
		t.Error(err)
	}
}

func dialPlain(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
