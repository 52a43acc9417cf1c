package tlsmux

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"testing"
	"time"
)

// managedCerts makes n self-signed certificates sharing one key, for
// d0.test ... d<n-1>.test.
func managedCerts(t testing.TB, n int) map[string]*tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]*tls.Certificate, n)
	for i := range n {
		name := fmt.Sprintf("d%d.test", i)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 1)), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{name}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := x509.ParseCertificate(der)
		out["le/"+name] = &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	}
	return out
}

func TestSetManaged(t *testing.T) {
	s, err := NewCertStore(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var missed []string
	remove := s.OnMiss(func(_ context.Context, n string) *tls.Certificate { missed = append(missed, n); return nil })
	defer remove()
	get := func(name string) *tls.Certificate {
		c, _ := s.GetCertificate(&tls.ClientHelloInfo{ServerName: name})
		return c
	}
	if get("D0.test.") != nil || len(missed) != 1 || missed[0] != "d0.test" {
		t.Fatalf("before SetManaged: missed %q", missed)
	}
	certs := managedCerts(t, 2)
	if err := s.SetManaged(certs); err != nil {
		t.Fatal(err)
	}
	if get("D0.test.") != certs["le/d0.test"] || get("d1.test") != certs["le/d1.test"] {
		t.Fatal("managed certificates not served")
	}
	repl := managedCerts(t, 1)["le/d0.test"]
	if err := s.SetManaged(map[string]*tls.Certificate{"le/d0.test": repl, "le/d1.test": nil}); err != nil {
		t.Fatal(err)
	}
	if get("d0.test") != repl || get("d1.test") != nil {
		t.Error("replace and remove did not apply")
	}
	if s.Managed("le/d0.test") != repl {
		t.Error("Managed does not return the replacement")
	}
	if err := s.SetManaged(map[string]*tls.Certificate{"bad": {}}); err == nil {
		t.Error("a certificate without a leaf was accepted")
	}
}

// BenchmarkGetCertificateManaged shows that picking a certificate costs
// the same with 10 and with 1,000 managed certificates: two map lookups.
func BenchmarkGetCertificateManaged(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("certs=%d", n), func(b *testing.B) {
			s, err := NewCertStore(nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.SetManaged(managedCerts(b, n)); err != nil {
				b.Fatal(err)
			}
			hello := &tls.ClientHelloInfo{ServerName: fmt.Sprintf("d%d.test", n/2),
				SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256}, SupportedVersions: []uint16{tls.VersionTLS13}}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.GetCertificate(hello); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
