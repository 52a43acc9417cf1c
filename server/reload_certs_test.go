package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// selfSigned writes a self-signed certificate for name with serial into
// dir/cert.pem and dir/key.pem (replacing them by rename).
func selfSigned(t *testing.T, dir, name string, serial int64) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	for file, block := range map[string]*pem.Block{
		"cert.pem": {Type: "CERTIFICATE", Bytes: der},
		"key.pem":  {Type: "EC PRIVATE KEY", Bytes: kder},
	} {
		tmp := filepath.Join(dir, file+".tmp")
		if err := os.WriteFile(tmp, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, file)); err != nil {
			t.Fatal(err)
		}
	}
}

// servedSerial is the serial of the certificate addr presents for name.
func servedSerial(t *testing.T, addr, name string) int64 {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// TestReloadRereadsCertificates: a reload with the same certificate files
// keeps the store and serves the files' new content at once (without
// waiting for the store's poll); other files make a new store.
func TestReloadRereadsCertificates(t *testing.T) {
	dir := t.TempDir()
	selfSigned(t, dir, "a.test", 1)
	src := func(certDir, body string) string {
		return fmt.Sprintf(`
entrypoint "web" { address = "127.0.0.1:0" }
tls {
  certificate "c" {
    cert_file = %q
    key_file  = %q
  }
}
http_route "r" {
  entrypoints = ["web"]
  service     = "s"
}
service "s" {
  respond { body = %q }
}
`, filepath.Join(certDir, "cert.pem"), filepath.Join(certDir, "key.pem"), body)
	}
	s := started(t, src(dir, "v1"))
	addr := s.Addr("web").String()
	if got := servedSerial(t, addr, "a.test"); got != 1 {
		t.Fatalf("serial %d", got)
	}
	store := s.cur.Load().certs
	selfSigned(t, dir, "a.test", 2)
	reload(t, s, src(dir, "v2"))
	if s.cur.Load().certs != store {
		t.Fatal("certificate store rebuilt although the files are the same")
	}
	if got := servedSerial(t, addr, "a.test"); got != 2 {
		t.Fatalf("after the reload: serial %d, want the new file's 2", got)
	}

	other := t.TempDir()
	selfSigned(t, other, "a.test", 3)
	reload(t, s, src(other, "v3"))
	if s.cur.Load().certs == store {
		t.Fatal("certificate store kept although the files changed")
	}
	if got := servedSerial(t, addr, "a.test"); got != 3 {
		t.Fatalf("after the reload to other files: serial %d, want 3", got)
	}
	// HTTPS still answers with the new configuration.
	tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: "a.test", InsecureSkipVerify: true}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}
