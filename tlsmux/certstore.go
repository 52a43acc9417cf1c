package tlsmux

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// CertSource is a certificate and key pair on disk.
type CertSource struct {
	Name     string
	CertFile string // PEM chain, leaf first
	KeyFile  string // PEM private key (ECDSA, RSA or Ed25519)
	// Default marks the certificate served when no name matches the SNI
	// (or the client sent none).
	Default bool
}

// ErrNoCertificate is returned to the handshake when no certificate fits.
var ErrNoCertificate = errors.New("no certificate for this server name")

// CertStore picks the certificate for a handshake by SNI and reloads pairs
// whose files change. Reads take no lock: the index is swapped atomically.
type CertStore struct {
	sources []CertSource
	log     *slog.Logger
	index   atomic.Pointer[certIndex]

	mu     sync.Mutex // serialises reloads and SetManaged
	loaded []loadedPair
	// managed are the certificates added by SetManaged (ACME), by key.
	managed map[string]*tls.Certificate
	miss    atomic.Pointer[MissFunc]
	cancel  context.CancelFunc
	done    chan struct{}
}

// loadedPair is a source with the certificate now served for it and the
// file stamps it was loaded from.
type loadedPair struct {
	cert      *tls.Certificate
	certStamp fileStamp
	keyStamp  fileStamp
	failed    [2]fileStamp // stamps of the last failed load, so it is logged once
	missing   bool         // a file could not be stat'ed at the last poll
}

type fileStamp struct {
	mod  time.Time
	size int64
	ino  uint64
}

// certIndex maps names to certificates; each list has ECDSA and Ed25519
// certificates before RSA ones, so clients that support them get them.
type certIndex struct {
	exact    map[string][]*tls.Certificate
	wildcard map[string][]*tls.Certificate // keyed by the part after "*."
	defaults []*tls.Certificate
	first    []*tls.Certificate // the first configured pair
}

// NewCertStore loads every source; any failure is returned (at start a
// missing certificate is a configuration error, not something to serve
// around).
func NewCertStore(sources []CertSource, log *slog.Logger) (*CertStore, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &CertStore{sources: sources, log: log, loaded: make([]loadedPair, len(sources))}
	for i, src := range sources {
		lp, err := loadPair(src)
		if err != nil {
			return nil, fmt.Errorf("certificate %q: %w", src.Name, err)
		}
		s.loaded[i] = lp
	}
	s.rebuild()
	return s, nil
}

func stat(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size(), ino: inode(fi)}, nil
}

func loadPair(src CertSource) (loadedPair, error) {
	cs, err := stat(src.CertFile)
	if err != nil {
		return loadedPair{}, err
	}
	ks, err := stat(src.KeyFile)
	if err != nil {
		return loadedPair{}, err
	}
	cert, err := tls.LoadX509KeyPair(src.CertFile, src.KeyFile)
	if err != nil {
		return loadedPair{certStamp: cs, keyStamp: ks}, err
	}
	return loadedPair{cert: &cert, certStamp: cs, keyStamp: ks}, nil
}

// rebuild makes a new index from s.loaded; s.mu must be held (or s not yet
// shared).
func (s *CertStore) rebuild() {
	idx := &certIndex{exact: map[string][]*tls.Certificate{}, wildcard: map[string][]*tls.Certificate{}}
	for i, lp := range s.loaded {
		c := lp.cert
		if i == 0 {
			idx.first = []*tls.Certificate{c}
		}
		if s.sources[i].Default {
			idx.defaults = append(idx.defaults, c)
		}
		for _, name := range c.Leaf.DNSNames {
			name = strings.TrimSuffix(strings.ToLower(name), ".")
			if rest, ok := strings.CutPrefix(name, "*."); ok {
				idx.wildcard[rest] = append(idx.wildcard[rest], c)
			} else {
				idx.exact[name] = append(idx.exact[name], c)
			}
		}
	}
	s.indexManaged(idx)
	for _, m := range []map[string][]*tls.Certificate{idx.exact, idx.wildcard} {
		for _, l := range m {
			slices.SortStableFunc(l, func(a, b *tls.Certificate) int { return keyRank(a) - keyRank(b) })
		}
	}
	s.index.Store(idx)
}

func keyRank(c *tls.Certificate) int {
	switch c.PrivateKey.(type) {
	case *ecdsa.PrivateKey, ed25519.PrivateKey:
		return 0
	}
	return 1
}

// GetCertificate is a tls.Config.GetCertificate: the exact SNI name, then a
// wildcard covering it, then the default certificate. Among certificates for
// the same name, the first the client supports (ECDSA before RSA).
func (s *CertStore) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	idx := s.index.Load()
	var buf [256]byte
	name := lowerName(buf[:0], hello.ServerName)
	cands := idx.exact[string(name)]
	if cands == nil {
		if i := bytes.IndexByte(name, '.'); i > 0 {
			cands = idx.wildcard[string(name[i+1:])]
		}
	}
	if cands == nil && len(name) > 0 {
		if f := s.miss.Load(); f != nil {
			if c := (*f)(hello.Context(), string(name)); c != nil {
				return c, nil
			}
		}
	}
	if cands == nil {
		cands = idx.defaults
	}
	if cands == nil && hello.ServerName == "" {
		// A client without SNI (one connecting by IP address) gets the
		// first certificate, as nginx serves its default server's.
		cands = idx.first
	}
	if len(cands) == 0 {
		return nil, fmt.Errorf("%w: %q", ErrNoCertificate, hello.ServerName)
	}
	for _, c := range cands {
		if hello.SupportsCertificate(c) == nil {
			return c, nil
		}
	}
	return cands[0], nil
}

// lowerName appends name lower-cased without a trailing dot to dst.
func lowerName[T string | []byte](dst []byte, name T) []byte {
	if n := len(name); n > 0 && name[n-1] == '.' {
		name = name[:n-1]
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// Reload re-reads every pair whose files changed since it was loaded. A
// pair that fails to load keeps serving its previous certificate; the
// failure is logged once per change. It reports how many pairs changed.
func (s *CertStore) Reload() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := 0
	for i, src := range s.sources {
		old := s.loaded[i]
		cs, err1 := stat(src.CertFile)
		ks, err2 := stat(src.KeyFile)
		if err := errors.Join(err1, err2); err != nil {
			if !old.missing {
				s.loaded[i].missing = true
				s.log.Error("certificate reload failed; keeping the old one", "certificate", src.Name, "error", err)
			}
			continue
		}
		s.loaded[i].missing = false
		stamps := [2]fileStamp{cs, ks}
		if stamps == [2]fileStamp{old.certStamp, old.keyStamp} || stamps == old.failed {
			continue
		}
		lp, err := loadPair(src)
		if err != nil {
			// A writer may have replaced one file but not yet the other;
			// the next poll retries when either changes again.
			s.loaded[i].failed = stamps
			s.log.Error("certificate reload failed; keeping the old one", "certificate", src.Name, "error", err)
			continue
		}
		s.loaded[i] = lp
		changed++
		s.log.Info("certificate reloaded", "certificate", src.Name, "not_after", lp.cert.Leaf.NotAfter)
	}
	if changed > 0 {
		s.rebuild()
	}
	return changed
}

// Watch polls the files every interval and reloads those that changed,
// until Close. Polling (rather than inotify) also sees the atomic symlink
// swaps of Kubernetes secrets and files replaced by rename.
func (s *CertStore) Watch(interval time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	s.mu.Lock()
	if s.cancel != nil {
		s.mu.Unlock()
		cancel()
		return
	}
	s.cancel, s.done = cancel, make(chan struct{})
	s.mu.Unlock()
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.Reload()
			}
		}
	}()
}

// Close stops Watch and waits for it.
func (s *CertStore) Close() {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}
