package quic

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	quicgo "github.com/quic-go/quic-go"

	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/l4"
	"github.com/proxynow/proxynow/upstream"
)

// ptALPN is the application protocol of the test servers.
const ptALPN = "pt-test"

// ptCert makes a self-signed certificate for names and a pool trusting it.
func ptCert(t testing.TB, names ...string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: names[0]},
		DNSNames:              names,
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, roots
}

// ptPool is a service pool over UDP backends.
func ptPool(t testing.TB, addrs ...string) *upstream.Pool {
	t.Helper()
	svc := &config.Service{Name: "svc", ConnectTimeout: time.Second, FailTimeout: time.Minute}
	for _, a := range addrs {
		svc.Backends = append(svc.Backends, config.Backend{Address: a, Weight: 1})
	}
	p, err := upstream.NewPool(svc, upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// ptServe runs a quic-go server on tr that answers each stream with
// marker followed by what the stream carried, until the test ends.
func ptServe(t testing.TB, tr *quicgo.Transport, cert tls.Certificate, marker string) {
	t.Helper()
	ln, err := tr.Listen(&tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{ptALPN}},
		&quicgo.Config{MaxIdleTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					s, err := conn.AcceptStream(context.Background())
					if err != nil {
						return
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						defer s.Close()
						b, err := io.ReadAll(io.LimitReader(s, 1<<20))
						if err != nil {
							return
						}
						_, _ = s.Write(append([]byte(marker), b...))
					}()
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); tr.Close(); wg.Wait() })
}

// ptBackend starts a quic-go server with its own certificate for names on
// a loopback port; it returns the address and a pool trusting it.
func ptBackend(t testing.TB, marker string, names ...string) (string, *x509.CertPool) {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	cert, roots := ptCert(t, names...)
	ptServe(t, &quicgo.Transport{Conn: pc}, cert, marker)
	return pc.LocalAddr().String(), roots
}

// ptDemux starts a Demux on a loopback port; local, when set, gets a
// quic-go server on Local with its own certificate for names.
func ptDemux(t testing.TB, routes []PassRoute, opts DemuxOptions) (*Demux, string) {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDemux(pc, routes, opts)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- d.Serve() }()
	t.Cleanup(func() {
		d.Close()
		if err := <-served; !errors.Is(err, l4.ErrServerClosed) {
			t.Errorf("Serve = %v, want ErrServerClosed", err)
		}
	})
	return d, pc.LocalAddr().String()
}

// ptLocalServer serves a quic-go server for names on d.Local().
func ptLocalServer(t testing.TB, d *Demux, marker string, names ...string) *x509.CertPool {
	t.Helper()
	cert, roots := ptCert(t, names...)
	ptServe(t, &quicgo.Transport{Conn: d.Local()}, cert, marker)
	return roots
}

// ptExchange dials addr with sni through conn (or a fresh socket when conn
// is nil), checks the server's certificate names sni, and returns the
// answer to msg on one stream.
func ptExchange(ctx context.Context, addr, sni string, roots *x509.CertPool, msg string) (string, error) {
	conn, err := quicgo.DialAddr(ctx, addr,
		&tls.Config{ServerName: sni, RootCAs: roots, NextProtos: []string{ptALPN}},
		&quicgo.Config{HandshakeIdleTimeout: 10 * time.Second})
	if err != nil {
		return "", fmt.Errorf("dial %s: %w", sni, err)
	}
	defer conn.CloseWithError(0, "")
	if cn := conn.ConnectionState().TLS.PeerCertificates[0].Subject.CommonName; cn != sni {
		return "", fmt.Errorf("certificate of %q, want %q", cn, sni)
	}
	return ptStream(ctx, conn, msg)
}

func ptStream(ctx context.Context, conn *quicgo.Conn, msg string) (string, error) {
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return "", err
	}
	if _, err := s.Write([]byte(msg)); err != nil {
		return "", err
	}
	s.Close()
	b, err := io.ReadAll(s)
	return string(b), err
}
