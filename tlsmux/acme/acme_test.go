package acme

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/tlsmux"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// selfSigned makes a certificate and key PEM for names, valid from nb to na.
func selfSigned(t testing.TB, nb, na time.Time, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: nb, NotAfter: na, DNSNames: names}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

const testDir = "https://ca.test:14000/dir"

func TestStorageRoundTripAndModes(t *testing.T) {
	root := filepath.Join(t.TempDir(), "acme")
	st, err := newStorage(root, testDir)
	if err != nil {
		t.Fatal(err)
	}
	c, k := selfSigned(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "*.example.com")
	if err := st.saveCert("*.example.com", c, k); err != nil {
		t.Fatal(err)
	}
	// Overwrite: the rename replaces the file whole.
	c2, k2 := selfSigned(t, time.Now().Add(-time.Hour), time.Now().Add(2*time.Hour), "*.example.com")
	if err := st.saveCert("*.example.com", c2, k2); err != nil {
		t.Fatal(err)
	}
	got, err := st.loadCert("*.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := tls.X509KeyPair(c2, k2); !got.Leaf.Equal(want.Leaf) {
		t.Error("loaded certificate is not the last one saved")
	}
	if _, err := st.loadCert("other.example.com"); !os.IsNotExist(err) {
		t.Errorf("missing certificate: got %v, want not-exist", err)
	}
	a1, err := st.loadAccount("ops@example.com")
	if err != nil {
		t.Fatal(err)
	}
	a2, err := st.loadAccount("ops@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if a1.KeyPEM != a2.KeyPEM {
		t.Error("the account key was not reused")
	}
	err = filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700
		} else if strings.HasPrefix(fi.Name(), ".") {
			t.Errorf("temporary file left: %s", p)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestStorageUnusable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	certs, _ := tlsmux.NewCertStore(nil, nil)
	_, err := New(Options{Certs: certs, ACME: []config.ACME{{Name: "le", Directory: testDir, Storage: filepath.Join(file, "sub"), Domains: []string{"a.test"}}}})
	if err == nil || !strings.Contains(err.Error(), `tls: acme "le": storage`) {
		t.Fatalf("got %v, want a storage error naming the block", err)
	}
}

// TestNewServesStored checks that stored certificates are served before
// Start, that is before any CA is contacted, and that an expired one is not.
func TestNewServesStored(t *testing.T) {
	root := t.TempDir()
	st, err := newStorage(root, testDir)
	if err != nil {
		t.Fatal(err)
	}
	c, k := selfSigned(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "a.test")
	if err := st.saveCert("a.test", c, k); err != nil {
		t.Fatal(err)
	}
	c, k = selfSigned(t, time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour), "old.test")
	if err := st.saveCert("old.test", c, k); err != nil {
		t.Fatal(err)
	}
	certs, _ := tlsmux.NewCertStore(nil, nil)
	m, err := New(Options{Certs: certs, ACME: []config.ACME{{Name: "le", Directory: testDir, Storage: root, Domains: []string{"a.test", "old.test"}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	got, err := certs.GetCertificate(&tls.ClientHelloInfo{ServerName: "a.test"})
	if err != nil || got.Leaf.DNSNames[0] != "a.test" {
		t.Fatalf("a.test: %v, %v", got, err)
	}
	if _, err := certs.GetCertificate(&tls.ClientHelloInfo{ServerName: "old.test"}); err == nil {
		t.Error("an expired stored certificate is served")
	}
}

func TestHTTPChallengeHandler(t *testing.T) {
	c := newChallenges()
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := c.handler(next)
	if err := (httpProvider{c}).Present("a.test", "tok", "tok.auth"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, method, path string
		status             int
		body               string
	}{
		{"token", "GET", "/.well-known/acme-challenge/tok", 200, "tok.auth"},
		{"head", "HEAD", "/.well-known/acme-challenge/tok", 200, "tok.auth"}, // the server drops a HEAD body, the recorder does not
		{"unknown token goes on", "GET", "/.well-known/acme-challenge/other", http.StatusTeapot, ""},
		{"post goes on", "POST", "/.well-known/acme-challenge/tok", http.StatusTeapot, ""},
		{"other path goes on", "GET", "/", http.StatusTeapot, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(tc.method, "http://a.test"+tc.path, nil))
			if w.Code != tc.status || w.Body.String() != tc.body {
				t.Errorf("got %d %q, want %d %q", w.Code, w.Body.String(), tc.status, tc.body)
			}
		})
	}
	_ = (httpProvider{c}).CleanUp("a.test", "tok", "")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "http://a.test/.well-known/acme-challenge/tok", nil))
	if w.Code != http.StatusTeapot {
		t.Errorf("after CleanUp: %d, want the next handler", w.Code)
	}
}

func TestALPNChallengeCert(t *testing.T) {
	c := newChallenges()
	p := alpnProvider{c}
	if err := p.Present("A.test", "tok", "keyauth"); err != nil {
		t.Fatal(err)
	}
	cert := c.ChallengeCert("a.test")
	if cert == nil || cert.Leaf == nil && len(cert.Certificate) == 0 {
		t.Fatal("no challenge certificate for a.test")
	}
	if c.ChallengeCert("b.test") != nil {
		t.Error("challenge certificate for a name without a validation")
	}
	_ = p.CleanUp("a.test", "tok", "keyauth")
	if c.ChallengeCert("a.test") != nil {
		t.Error("challenge certificate kept after CleanUp")
	}
}

func TestBackoff(t *testing.T) {
	mid := func(n int64) int64 { return n / 2 } // no jitter
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour}
	for i, w := range want {
		if got := backoff(i+1, time.Minute, time.Hour, mid); got != w {
			t.Errorf("failure %d: %v, want %v", i+1, got, w)
		}
	}
	for range 100 {
		if got := backoff(3, time.Minute, time.Hour, func(n int64) int64 { return n - 1 }); got < 4*time.Minute || got > 4*time.Minute+24*time.Second {
			t.Fatalf("jitter out of ±10%%: %v", got)
		}
	}
}

func TestRenewalTime(t *testing.T) {
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	leaf := &x509.Certificate{NotBefore: nb, NotAfter: nb.Add(90 * 24 * time.Hour)}
	zero := func(int64) int64 { return 0 }
	if got, want := renewalTime(leaf, 0, zero), nb.Add(60*24*time.Hour); !got.Equal(want) {
		t.Errorf("a third left: %v, want %v", got, want)
	}
	if got, want := renewalTime(leaf, 7*24*time.Hour, zero), nb.Add(83*24*time.Hour); !got.Equal(want) {
		t.Errorf("renew_before: %v, want %v", got, want)
	}
	maxJ := func(n int64) int64 { return n - 1 }
	if got := renewalTime(leaf, 0, maxJ); got.Before(nb.Add(60*24*time.Hour - time.Hour)) {
		t.Errorf("jitter above an hour: %v", got)
	}
}

// TestDNSProviderNames keeps config's lists of lego DNS providers equal to
// lego's registry (read from the module's source, not imported: see
// dnsProviders) and to the providers built in here.
func TestDNSProviderNames(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/go-acme/lego/v4").Output()
	if err != nil {
		t.Fatalf("go list lego: %v", err)
	}
	src, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "providers", "dns", "zz_gen_dns_providers.go"))
	if err != nil {
		t.Fatal(err)
	}
	var lego []string
	for _, m := range regexp.MustCompile(`(?m)^\s*case (.*):$`).FindAllStringSubmatch(string(src), -1) {
		for _, q := range regexp.MustCompile(`"([^"]+)"`).FindAllStringSubmatch(m[1], -1) {
			lego = append(lego, q[1])
		}
	}
	sort.Strings(lego)
	lego = slices.Compact(lego)
	if got := config.DNSProviders(); !slices.Equal(got, lego) {
		t.Errorf("config's provider list (%d names) differs from lego's (%d); regenerate config/acme_providers.go", len(got), len(lego))
	}
	var built []string
	for n := range dnsProviders {
		built = append(built, n)
		if !slices.Contains(lego, n) {
			t.Errorf("built-in provider %q is not a lego name", n)
		}
	}
	sort.Strings(built)
	if want := config.DNSBuiltin(); !slices.Equal(built, want) {
		t.Errorf("built-in providers %v, config says %v", built, want)
	}
}
