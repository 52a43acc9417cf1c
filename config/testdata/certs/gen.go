//go:build ignore

// gen writes the throwaway test certificates of this directory:
//
//	go run gen.go .
//
// The keys are public test data; never use them for anything else.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

func gen(dir, name, cn string, dns []string, from, to time.Time, ca bool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		DNSNames:              dns,
		NotBefore:             from,
		NotAfter:              to,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	if ca {
		tmpl.IsCA = true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		tmpl.ExtKeyUsage = nil
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		panic(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if ca {
		must(os.WriteFile(filepath.Join(dir, name+".pem"), certPEM, 0o644))
	} else {
		must(os.WriteFile(filepath.Join(dir, name+".crt"), certPEM, 0o644))
		must(os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o644))
	}
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func main() {
	dir := os.Args[1]
	now := time.Now().UTC().Truncate(24 * time.Hour)
	gen(dir, "site", "example.com", []string{"example.com", "*.example.com"}, now.AddDate(0, 0, -1), now.AddDate(100, 0, 0), false)
	gen(dir, "other", "other.example", []string{"other.example"}, now.AddDate(0, 0, -1), now.AddDate(100, 0, 0), false)
	gen(dir, "expired", "expired.example", []string{"expired.example"}, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC), false)
	gen(dir, "ca", "proxynow test CA", nil, now.AddDate(0, 0, -1), now.AddDate(100, 0, 0), true)
}
