package acme

import (
	"crypto"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-acme/lego/v4/certcrypto"
	"github.com/go-acme/lego/v4/registration"
)

// storage is the directory of one acme block:
//
//	<root>/accounts/<ca>/<email or "default">.json   account key and registration
//	<root>/certificates/<ca>/<domain>.pem            chain, then private key
//
// <ca> is the directory URL's host and path, so that several CAs (and
// several acme blocks) share one root without mixing. Directories are
// 0700 and files 0600; every file is written whole to a temporary file
// and renamed over the old one, so a crash never leaves half a file and
// a certificate never goes without its key.
type storage struct {
	accounts string
	certs    string
}

func newStorage(root, directory string) (*storage, error) {
	u, err := url.Parse(directory)
	if err != nil {
		return nil, fmt.Errorf("directory %q: %w", directory, err)
	}
	ca := safeName(u.Host + strings.TrimSuffix(u.Path, "/"))
	s := &storage{accounts: filepath.Join(root, "accounts", ca), certs: filepath.Join(root, "certificates", ca)}
	for _, d := range []string{s.accounts, s.certs} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("storage %q: %w", root, err)
		}
	}
	// Prove now that files can be written, so that an unwritable storage
	// stops the start with a clear error rather than failing every
	// issuance later.
	probe, err := os.CreateTemp(s.certs, ".probe-*")
	if err != nil {
		return nil, fmt.Errorf("storage %q is not writable: %w", root, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	return s, nil
}

// safeName maps a domain or URL part to one path element: "*" (of a
// wildcard) becomes "_", and every byte outside [a-z0-9.-] becomes "_".
func safeName(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}

// writeAtomic writes data to path with mode 0600 via a temporary file in
// the same directory, synced, then renamed over path.
func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync() // make the rename durable; not all file systems support it
		d.Close()
	}
	return nil
}

func (s *storage) certPath(domain string) string {
	return filepath.Join(s.certs, safeName(domain)+".pem")
}

// saveCert stores the chain (PEM, leaf first) and the key (PEM) of domain
// as one file.
func (s *storage) saveCert(domain string, chainPEM, keyPEM []byte) error {
	data := append(append(append([]byte(nil), chainPEM...), '\n'), keyPEM...)
	return writeAtomic(s.certPath(domain), data)
}

// loadCert reads the stored certificate of domain; os.ErrNotExist when
// there is none.
func (s *storage) loadCert(domain string) (*tls.Certificate, error) {
	data, err := os.ReadFile(s.certPath(domain))
	if err != nil {
		return nil, err
	}
	return parseBundle(data)
}

// parseBundle splits a stored file into its CERTIFICATE blocks and its
// key and checks that they belong together.
func parseBundle(data []byte) (*tls.Certificate, error) {
	var chain, key []byte
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			chain = append(chain, pem.EncodeToMemory(b)...)
		} else if strings.HasSuffix(b.Type, "PRIVATE KEY") {
			key = pem.EncodeToMemory(b)
		}
	}
	if chain == nil || key == nil {
		return nil, errors.New("file does not hold a certificate and a private key")
	}
	c, err := tls.X509KeyPair(chain, key)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// account is the stored form of an ACME account.
type account struct {
	Email        string                 `json:"email,omitempty"`
	Registration *registration.Resource `json:"registration,omitempty"`
	KeyPEM       string                 `json:"key"`
	key          crypto.PrivateKey
}

// registration.User
func (a *account) GetEmail() string                        { return a.Email }
func (a *account) GetRegistration() *registration.Resource { return a.Registration }
func (a *account) GetPrivateKey() crypto.PrivateKey        { return a.key }

func (s *storage) accountPath(email string) string {
	if email == "" {
		email = "default"
	}
	return filepath.Join(s.accounts, safeName(email)+".json")
}

// loadAccount returns the stored account of email, or a new one with a
// fresh key (stored at once, so that a crash between registering and
// saving cannot orphan a registered key) and no registration.
func (s *storage) loadAccount(email string) (*account, error) {
	p := s.accountPath(email)
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		key, err := certcrypto.GeneratePrivateKey(certcrypto.EC256)
		if err != nil {
			return nil, err
		}
		a := &account{Email: email, key: key, KeyPEM: string(certcrypto.PEMEncode(key))}
		return a, s.saveAccount(a)
	}
	if err != nil {
		return nil, err
	}
	a := &account{}
	if err := json.Unmarshal(data, a); err != nil {
		return nil, fmt.Errorf("account %s: %w", p, err)
	}
	if a.key, err = certcrypto.ParsePEMPrivateKey([]byte(a.KeyPEM)); err != nil {
		return nil, fmt.Errorf("account %s: %w", p, err)
	}
	a.Email = email
	return a, nil
}

func (s *storage) saveAccount(a *account) error {
	data, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(s.accountPath(a.Email), data)
}
