package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/proxynow/proxynow/config"
)

// writeCert writes a self-signed certificate for "t.test" and returns the
// file paths and a pool trusting it.
func writeCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: "t.test"},
		DNSNames:     []string{"t.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "t.crt"), filepath.Join(dir, "t.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	leaf, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(leaf)
	return certFile, keyFile, pool
}

func http3Config(t *testing.T, address, extra string) (*config.Config, *x509.CertPool) {
	t.Helper()
	certFile, keyFile, pool := writeCert(t)
	return parse(t, fmt.Sprintf(`
tls {
  certificate "t" {
    cert_file = %q
    key_file  = %q
  }
}
entrypoint "web" {
  address = %q
  http3   = true
  %s
}
http_route "all" {
  entrypoints = ["web"]
  service     = "hello"
}
service "hello" {
  respond {
    status = 200
    body   = "hello"
  }
}
`, certFile, keyFile, address, extra)), pool
}

func TestHTTP3Entrypoint(t *testing.T) {
	cfg, pool := http3Config(t, "127.0.0.1:0", "")
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addr := s.Addr("web").String()
	tlsConf := &tls.Config{RootCAs: pool, ServerName: "t.test"}

	h3 := &http3.Transport{TLSClientConfig: tlsConf}
	defer h3.Close()
	resp, err := (&http.Client{Transport: h3, Timeout: 20 * time.Second}).Get("https://" + addr + "/")
	if err != nil {
		t.Fatalf("HTTP/3 GET: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 3 || string(body) != "hello" || resp.Header.Get("Alt-Svc") != "" {
		t.Fatalf("HTTP/3: %s %q Alt-Svc %q", resp.Proto, body, resp.Header.Get("Alt-Svc"))
	}

	tr := &http.Transport{TLSClientConfig: tlsConf, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err = (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Get("https://" + addr + "/")
	if err != nil {
		t.Fatalf("HTTP/2 GET: %v", err)
	}
	resp.Body.Close()
	_, port, _ := net.SplitHostPort(addr)
	if want := `h3=":` + port + `"; ma=86400`; resp.ProtoMajor != 2 || resp.Header.Get("Alt-Svc") != want {
		t.Fatalf("HTTP/2: %s Alt-Svc %q, want %q", resp.Proto, resp.Header.Get("Alt-Svc"), want)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestHTTP3AdvertisedPort(t *testing.T) {
	cfg, pool := http3Config(t, "127.0.0.1:0", "http3_advertised_port = 443")
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "t.test"}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Get("https://" + s.Addr("web").String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Alt-Svc"); got != `h3=":443"; ma=86400` {
		t.Fatalf("Alt-Svc %q", got)
	}
}

func TestHTTP3PortInUse(t *testing.T) {
	// A UDP port whose TCP twin was free a moment ago: any UDP port may
	// have its number taken in TCP by a concurrent test.
	var busy net.PacketConn
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		busy, err = net.ListenPacket("udp", ln.Addr().String())
		ln.Close()
		if err == nil {
			break
		}
	}
	if busy == nil {
		t.Fatal("no UDP port with a free TCP twin")
	}
	defer busy.Close()
	cfg, _ := http3Config(t, busy.LocalAddr().String(), "")
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start()
	if err == nil {
		s.Close()
		t.Fatal("Start succeeded with the UDP port taken")
	}
	if !strings.Contains(err.Error(), `entrypoint "web"`) || !strings.Contains(err.Error(), "http3") {
		t.Fatalf("error %q does not name the entrypoint and http3", err)
	}
}
