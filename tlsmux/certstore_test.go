package tlsmux

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"errors"
	"os"
	"testing"
)

func TestCertStoreSelection(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	var srcs []CertSource
	add := func(name, kind string, def bool, names ...string) {
		c, k := ca.issue(t, dir, kind, names...)
		srcs = append(srcs, CertSource{Name: name, CertFile: c, KeyFile: k, Default: def})
	}
	add("b-rsa", "rsa", false, "b.test")
	add("b-ecdsa", "ecdsa", false, "b.test")
	add("wild", "ed25519", false, "*.wild.test")
	add("fallback", "ecdsa", true, "fallback.test")
	s, err := NewCertStore(srcs, nil)
	if err != nil {
		t.Fatal(err)
	}
	ecdsaAndRSA := []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256, tls.PSSWithSHA256, tls.PKCS1WithSHA256}
	rsaOnly := []tls.SignatureScheme{tls.PSSWithSHA256, tls.PKCS1WithSHA256}
	tests := []struct {
		name    string
		sni     string
		schemes []tls.SignatureScheme
		want    string // a DNS name of the leaf; "" means an error
		key     string
	}{
		{name: "exact prefers ECDSA", sni: "b.test", schemes: ecdsaAndRSA, want: "b.test", key: "ecdsa"},
		{name: "exact case and trailing dot", sni: "B.Test.", schemes: ecdsaAndRSA, want: "b.test", key: "ecdsa"},
		{name: "RSA-only client gets RSA", sni: "b.test", schemes: rsaOnly, want: "b.test", key: "rsa"},
		{name: "wildcard one label", sni: "x.wild.test", schemes: []tls.SignatureScheme{tls.Ed25519}, want: "*.wild.test"},
		{name: "wildcard not two labels", sni: "a.x.wild.test", schemes: ecdsaAndRSA, want: "fallback.test"},
		{name: "wildcard not the apex", sni: "wild.test", schemes: ecdsaAndRSA, want: "fallback.test"},
		{name: "no SNI gets default", sni: "", schemes: ecdsaAndRSA, want: "fallback.test"},
		{name: "unknown gets default", sni: "nope.test", schemes: ecdsaAndRSA, want: "fallback.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hello := &tls.ClientHelloInfo{
				ServerName:        tt.sni,
				SignatureSchemes:  tt.schemes,
				SupportedVersions: []uint16{tls.VersionTLS13, tls.VersionTLS12},
				SupportedCurves:   []tls.CurveID{tls.X25519, tls.CurveP256},
				SupportedPoints:   []uint8{0},
				CipherSuites:      []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_AES_128_GCM_SHA256},
			}
			c, err := s.GetCertificate(hello)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Leaf.DNSNames[0]; got != tt.want {
				t.Fatalf("served %q, want %q", got, tt.want)
			}
			switch tt.key {
			case "ecdsa":
				if _, ok := c.PrivateKey.(*ecdsa.PrivateKey); !ok {
					t.Fatalf("key %T, want ECDSA", c.PrivateKey)
				}
			case "rsa":
				if _, ok := c.PrivateKey.(*rsa.PrivateKey); !ok {
					t.Fatalf("key %T, want RSA", c.PrivateKey)
				}
			}
		})
	}
}

func TestCertStoreNoDefault(t *testing.T) {
	ca := newCA(t)
	c, k := ca.issue(t, t.TempDir(), "ecdsa", "only.test")
	s, err := NewCertStore([]CertSource{{Name: "only", CertFile: c, KeyFile: k}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetCertificate(&tls.ClientHelloInfo{ServerName: "other.test"}); !errors.Is(err, ErrNoCertificate) {
		t.Fatalf("err = %v, want ErrNoCertificate", err)
	}
}

func TestCertStoreLoadErrors(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	c, k := ca.issue(t, dir, "ecdsa", "a.test")
	c2, _ := ca.issue(t, dir, "ecdsa", "b.test")
	tests := []struct {
		name string
		src  CertSource
	}{
		{name: "missing cert", src: CertSource{Name: "x", CertFile: dir + "/nope.crt", KeyFile: k}},
		{name: "key does not match", src: CertSource{Name: "x", CertFile: c2, KeyFile: k}},
		{name: "not PEM", src: CertSource{Name: "x", CertFile: k, KeyFile: c}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewCertStore([]CertSource{tt.src}, nil); err == nil {
				t.Fatal("loaded a bad pair")
			}
		})
	}
}

func TestCertStoreReload(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	c, k := ca.issue(t, dir, "ecdsa", "r.test")
	s, err := NewCertStore([]CertSource{{Name: "r", CertFile: c, KeyFile: k, Default: true}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	serialOf := func() string {
		cert, err := s.GetCertificate(&tls.ClientHelloInfo{ServerName: "r.test"})
		if err != nil {
			t.Fatal(err)
		}
		return cert.Leaf.SerialNumber.String()
	}
	before := serialOf()
	if n := s.Reload(); n != 0 {
		t.Fatalf("Reload with no change reloaded %d", n)
	}

	// A broken cert file keeps the old certificate.
	writeFile(t, c, []byte("garbage"))
	if n := s.Reload(); n != 0 || serialOf() != before {
		t.Fatal("a bad file replaced the served certificate")
	}

	// A new valid pair is served from the next handshake on.
	c2, k2 := ca.issue(t, dir, "ecdsa", "r.test")
	for _, f := range [][2]string{{c2, c}, {k2, k}} {
		data, _ := os.ReadFile(f[0])
		writeFile(t, f[1], data)
	}
	if n := s.Reload(); n != 1 {
		t.Fatalf("Reload = %d, want 1", n)
	}
	if after := serialOf(); after == before {
		t.Fatal("new certificate not served")
	}

	// A missing file keeps the certificate too.
	os.Remove(c)
	kept := serialOf()
	s.Reload()
	if serialOf() != kept {
		t.Fatal("a missing file changed the served certificate")
	}
}

func TestCertStoreWatch(t *testing.T) {
	ca := newCA(t)
	c, k := ca.issue(t, t.TempDir(), "ecdsa", "w.test")
	s, err := NewCertStore([]CertSource{{Name: "w", CertFile: c, KeyFile: k}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Watch(10e6)
	s.Watch(10e6) // a second call is a no-op
	s.Close()
	s.Close()
}

func TestCertStoreNoSNIGetsFirst(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	c1, k1 := ca.issue(t, dir, "ecdsa", "one.test")
	c2, k2 := ca.issue(t, dir, "ecdsa", "two.test")
	s, err := NewCertStore([]CertSource{{Name: "1", CertFile: c1, KeyFile: k1}, {Name: "2", CertFile: c2, KeyFile: k2}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil || c.Leaf.DNSNames[0] != "one.test" {
		t.Fatalf("no SNI: %v %v", c, err)
	}
}
