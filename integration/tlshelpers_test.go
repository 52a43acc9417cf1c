//go:build linux

package integration

// Helpers for the tls_*_test.go files: an in-test CA issuing ECDSA P-256
// leaves, nginx run in the foreground with a generated config, openssl and
// curl wrappers, TLS backends and raw ClientHello bytes.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
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
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ---------------------------------------------------------------------------
// certificates

// testCA is a throwaway certificate authority; its PEM is written to file.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
	file string
}

// leafCert is a certificate issued by a testCA, written as PEM files.
type leafCert struct {
	certFile, keyFile string
	certPEM, keyPEM   []byte
	der               []byte // the leaf, DER
}

var certSerialLimit = new(big.Int).Lsh(big.NewInt(1), 62)

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, certSerialLimit)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name + " test CA", Organization: []string{"proxynow tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	ca.file = filepath.Join(t.TempDir(), name+"-ca.pem")
	if err := os.WriteFile(ca.file, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return ca
}

// pool is a cert pool holding only this CA.
func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issue makes an ECDSA P-256 server leaf for names and writes
// dir/base.crt and dir/base.key.
func (ca *testCA) issue(t testing.TB, dir, base string, names ...string) *leafCert {
	t.Helper()
	l := ca.issuePEM(t, names...)
	l.certFile = filepath.Join(dir, base+".crt")
	l.keyFile = filepath.Join(dir, base+".key")
	writeFileAtomic(t, l.keyFile, l.keyPEM)
	writeFileAtomic(t, l.certFile, l.certPEM)
	return l
}

// issuePEM makes a leaf without writing it anywhere.
func (ca *testCA) issuePEM(t testing.TB, names ...string) *leafCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, certSerialLimit)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     names,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &leafCert{
		der:     der,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	}
}

func (l *leafCert) tlsCert(t testing.TB) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(l.certPEM, l.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// writeFileAtomic writes data to a temporary sibling and renames it over path.
func writeFileAtomic(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// sha256Fingerprint formats the SHA-256 of der as openssl prints it: AB:CD:...
func sha256Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	for i, x := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", x)
	}
	return b.String()
}

// ---------------------------------------------------------------------------
// TLS clients

// tlsDial connects to addr (a proxynow entrypoint) and completes a TLS
// handshake bounded by 10s. The caller closes the connection.
func tlsDial(addr string, cfg *tls.Config) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := (&tls.Dialer{NetDialer: d, Config: cfg}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return c.(*tls.Conn), nil
}

// servedLeaf completes a handshake without verification and returns the
// leaf the server sent.
func servedLeaf(addr, serverName string, alpn ...string) ([]byte, error) {
	c, err := tlsDial(addr, &tls.Config{ServerName: serverName, InsecureSkipVerify: true, NextProtos: alpn})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Raw, nil
}

// httpGetOver sends a raw HTTP/1.1 GET over c and returns the response status
// and body.
func httpGetOver(c net.Conn, host string) (int, string, error) {
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// ---------------------------------------------------------------------------
// Go backends

// greetEcho is a backend handler that writes greeting, then echoes.
func greetEcho(greeting string) func(*tcpBackend, *net.TCPConn) {
	return func(b *tcpBackend, c *net.TCPConn) {
		_ = c.SetDeadline(time.Now().Add(2 * ioTimeout))
		if _, err := io.WriteString(c, greeting); err != nil {
			return
		}
		_, _ = io.Copy(c, c)
		_ = c.CloseWrite()
	}
}

// tlsGreetEcho is a TLS backend handler serving cert with the given ALPN
// protocols; after the handshake it writes greeting, then echoes.
func tlsGreetEcho(t testing.TB, cert tls.Certificate, greeting string, alpn ...string) func(*tcpBackend, *net.TCPConn) {
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: alpn}
	return func(b *tcpBackend, c *net.TCPConn) {
		_ = c.SetDeadline(time.Now().Add(2 * ioTimeout))
		tc := tls.Server(c, cfg)
		if err := tc.Handshake(); err != nil {
			return
		}
		if _, err := io.WriteString(tc, greeting); err != nil {
			return
		}
		_, _ = io.Copy(tc, tc)
	}
}

// readGreeting reads exactly n bytes.
func readGreeting(c net.Conn, n int) (string, error) {
	_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, n)
	_, err := io.ReadFull(c, buf)
	return string(buf), err
}

// ---------------------------------------------------------------------------
// outside tools

// requireToolFeature is requireTool for an optional feature of a tool.
func requireToolFeature(t testing.TB, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if ci, set := os.LookupEnv("CI"); set {
		t.Fatalf("%s is not available but CI=%q is set: it is required there", what, ci)
	}
	t.Skipf("%s is not available; skipping because CI is unset (with CI set this test fails)", what)
}

// runToolOutput runs an outside program to completion within 20s, feeding stdin,
// and returns stdout+stderr together.
func runToolOutput(t testing.TB, stdin []byte, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %v did not finish within 20s:\n%s", name, args, out)
	}
	return string(out), err
}

var fingerprintRE = regexp.MustCompile(`(?i)sha256 Fingerprint=([0-9A-F:]+)`)

// sClientFingerprint runs `openssl s_client -connect addr -servername sni
// [extra...] </dev/null` and returns the SHA-256 fingerprint of the server
// certificate in its output (via `openssl x509 -noout -fingerprint -sha256`)
// and the s_client output.
func sClientFingerprint(t testing.TB, addr, sni string, extra ...string) (fp, out string) {
	t.Helper()
	openssl := requireTool(t, "openssl")
	args := append([]string{"s_client", "-connect", addr, "-servername", sni}, extra...)
	out, _ = runToolOutput(t, nil, openssl, args...)
	if !strings.Contains(out, "-----BEGIN CERTIFICATE-----") {
		return "", out
	}
	x, err := runToolOutput(t, []byte(out), openssl, "x509", "-noout", "-fingerprint", "-sha256")
	if err != nil {
		t.Fatalf("openssl x509 on the s_client output: %v\n%s", err, x)
	}
	m := fingerprintRE.FindStringSubmatch(x)
	if m == nil {
		t.Fatalf("no fingerprint in openssl x509 output %q", x)
	}
	return strings.ToUpper(m[1]), out
}

// ---------------------------------------------------------------------------
// nginx

// nginxServer is an nginx process serving https://a.test/ with its own CA.
type nginxServer struct {
	addr string
	ca   *testCA
	leaf *leafCert
	dir  string
	proc *proc
}

// startNginx runs nginx in the foreground (master_process off, so one
// process that SIGKILL ends) on a loopback port with a generated config: it
// serves a.test with a leaf from a fresh CA and answers every request with
// 200 "nginx-a\n". With http2 the listener also speaks h2.
func startNginx(t testing.TB, http2 bool) *nginxServer {
	t.Helper()
	bin := requireTool(t, "nginx")
	dir := t.TempDir()
	for _, d := range []string{"tmp", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	ca := newTestCA(t, "nginx")
	leaf := ca.issue(t, dir, "a.test", "a.test")
	h2 := ""
	if http2 {
		h2 = " http2"
	}
	var lastErr string
	for range 3 { // the free port may be taken between freePort and bind
		port := freePort(t)
		conf := fmt.Sprintf(`
worker_processes 1;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log info;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[1]s/tmp/body;
  proxy_temp_path %[1]s/tmp/proxy;
  fastcgi_temp_path %[1]s/tmp/fastcgi;
  uwsgi_temp_path %[1]s/tmp/uwsgi;
  scgi_temp_path %[1]s/tmp/scgi;
  keepalive_requests 10000;
  server {
    listen 127.0.0.1:%[2]d ssl%[3]s;
    server_name a.test;
    ssl_certificate %[4]s;
    ssl_certificate_key %[5]s;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
      default_type text/plain;
      return 200 "nginx-a\n";
    }
  }
}
`, dir, port, h2, leaf.certFile, leaf.keyFile)
		if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		// -e keeps nginx away from the compiled-in /var/log path before it
		// reads the config.
		p := startHelper(t, bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"),
			"-e", filepath.Join(dir, "logs", "error.log"), "-g", "daemon off;")
		t.Cleanup(func() {
			// SIGTERM is nginx's fast shutdown; startHelper's cleanup (run
			// after this one) SIGKILLs it if it lingers.
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(5 * time.Second):
			}
			if t.Failed() {
				if b, err := os.ReadFile(filepath.Join(dir, "logs", "error.log")); err == nil {
					t.Logf("nginx error.log:\n%s", tail(string(b), 4000))
				}
			}
		})
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		deadline := time.Now().Add(readyTimeout)
		for time.Now().Before(deadline) && !p.exited() {
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				return &nginxServer{addr: addr, ca: ca, leaf: leaf, dir: dir, proc: p}
			}
			time.Sleep(50 * time.Millisecond)
		}
		<-p.done
		b, _ := os.ReadFile(filepath.Join(dir, "logs", "error.log"))
		lastErr = p.log.String() + string(b)
		if !strings.Contains(lastErr, "Address already in use") {
			break
		}
	}
	t.Fatalf("nginx did not start:\n%s", tail(lastErr, 4000))
	return nil
}

// ---------------------------------------------------------------------------
// raw ClientHello bytes and process inspection

// captureClientHello returns the first TLS record a Go client sends for cfg: a
// complete ClientHello.
func captureClientHello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := tlsDial(ln.Addr().String(), cfg)
		if err == nil {
			c.Close()
		}
	}()
	defer func() { <-done }()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_ = s.SetReadDeadline(time.Now().Add(5 * time.Second))
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(s, hdr); err != nil {
		t.Fatal(err)
	}
	rec := make([]byte, 5+int(hdr[3])<<8|int(hdr[4]))
	copy(rec, hdr)
	if _, err := io.ReadFull(s, rec[5:]); err != nil {
		t.Fatal(err)
	}
	if rec[0] != 0x16 || rec[5] != 0x01 {
		t.Fatalf("captured record is not a ClientHello: % x", rec[:6])
	}
	return rec
}

// procFDCount counts the open file descriptors of pid.
func procFDCount(t testing.TB, pid int) int {
	t.Helper()
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("reading /proc/%d/fd: %v", pid, err)
	}
	return len(es)
}
