//go:build linux

package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// benchServerName is the name in the certificate and the SNI every client sends.
const benchServerName = "bench.test"

// certFiles are one ECDSA P-256 certificate shared by every target, in the
// shapes they read: PEM certificate and key, and both in one file (HAProxy).
type certFiles struct {
	Cert, Key, Combined string
}

// writeCert generates a self-signed ECDSA P-256 certificate into dir.
func writeCert(dir string) (certFiles, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return certFiles{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: benchServerName},
		DNSNames:              []string{benchServerName},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return certFiles{}, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return certFiles{}, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	cf := certFiles{
		Cert:     filepath.Join(dir, "bench.crt"),
		Key:      filepath.Join(dir, "bench.key"),
		Combined: filepath.Join(dir, "bench.pem"),
	}
	for path, b := range map[string][]byte{cf.Cert: certPEM, cf.Key: keyPEM, cf.Combined: append(append([]byte{}, certPEM...), keyPEM...)} {
		// 0644: nginx's workers run as nobody; the files are throwaway.
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return certFiles{}, err
		}
	}
	return cf, nil
}
