package acme

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
	"runtime"
	"testing"
	"time"

	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/tlsmux"
)

// BenchmarkNewWith1000Stored is the start-up cost of 1,000 certificates in
// storage: New reads, parses and indexes them all (each its own key, as
// ACME issues them), and the first handshake can use any of them. It
// reports the heap they hold as heap-MB.
func BenchmarkNewWith1000Stored(b *testing.B) {
	const n = 1000
	root := b.TempDir()
	st, err := newStorage(root, testDir)
	if err != nil {
		b.Fatal(err)
	}
	domains := make([]string, n)
	for i := range n {
		domains[i] = fmt.Sprintf("d%d.test", i)
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 1)), Subject: pkix.Name{CommonName: domains[i]},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour), DNSNames: domains[i : i+1]}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			b.Fatal(err)
		}
		kder, _ := x509.MarshalPKCS8PrivateKey(key)
		if err := st.saveCert(domains[i], pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})); err != nil {
			b.Fatal(err)
		}
	}
	cfg := []config.ACME{{Name: "le", Directory: testDir, Storage: root, Domains: domains}}
	var heap uint64
	b.ReportAllocs()
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		certs, _ := tlsmux.NewCertStore(nil, nil)
		m, err := New(Options{ACME: cfg, Certs: certs})
		if err != nil {
			b.Fatal(err)
		}
		if c, err := certs.GetCertificate(&tls.ClientHelloInfo{ServerName: "d999.test"}); err != nil || c == nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap = after.HeapAlloc - before.HeapAlloc
		m.Close()
		runtime.KeepAlive(certs)
	}
	b.ReportMetric(float64(heap)/(1<<20), "heap-MB")
}
