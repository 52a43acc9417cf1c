package tlsmux

import (
	"context"
	"crypto/tls"
	"errors"
	"maps"
	"slices"
	"strings"
)

// SetManaged adds, replaces or (with a nil value) removes certificates
// obtained at run time (ACME), by a key of the caller's choosing, in one
// atomic step: the next handshake sees all of the changes, and handshakes
// already done keep the certificate they got. A certificate is indexed by
// its leaf's DNS names, like a file pair; one whose leaf does not parse is
// refused.
func (s *CertStore) SetManaged(updates map[string]*tls.Certificate) error {
	for k, c := range updates {
		if c == nil {
			continue
		}
		if c.Leaf == nil || len(c.Certificate) == 0 || c.PrivateKey == nil {
			return errors.New("managed certificate " + k + ": no parsed leaf or key")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.managed == nil {
		s.managed = make(map[string]*tls.Certificate, len(updates))
	}
	for k, c := range updates {
		if c == nil {
			delete(s.managed, k)
		} else {
			s.managed[k] = c
		}
	}
	s.rebuild()
	return nil
}

// Managed returns the managed certificate under key, or nil.
func (s *CertStore) Managed(key string) *tls.Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.managed[key]
}

// MissFunc is called by a handshake whose server name (lower case, not
// empty) matches no certificate, before the default one is used; ctx is
// the handshake's (nil outside a handshake). A certificate it returns is
// served. It runs on the handshake's goroutine and may block it (ACME
// on-demand issuance), bounded by ctx.
type MissFunc func(ctx context.Context, serverName string) *tls.Certificate

// OnMiss sets f as the store's MissFunc, replacing any other. The
// returned func removes f, unless another has replaced it since (a
// configuration reload hands the store to a new ACME manager before the
// old one is closed).
func (s *CertStore) OnMiss(f MissFunc) (remove func()) {
	p := &f
	s.miss.Store(p)
	return func() { s.miss.CompareAndSwap(p, nil) }
}

// indexManaged adds the managed certificates to idx, in key order so that
// the index does not depend on map order; file pairs stay ahead of them
// for the same name.
func (s *CertStore) indexManaged(idx *certIndex) {
	for _, k := range slices.Sorted(maps.Keys(s.managed)) {
		c := s.managed[k]
		for _, name := range c.Leaf.DNSNames {
			name = strings.TrimSuffix(strings.ToLower(name), ".")
			if rest, ok := strings.CutPrefix(name, "*."); ok {
				idx.wildcard[rest] = append(idx.wildcard[rest], c)
			} else {
				idx.exact[name] = append(idx.exact[name], c)
			}
		}
	}
}
