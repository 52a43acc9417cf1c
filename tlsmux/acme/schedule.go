package acme

import (
	"crypto/x509"
	"time"
)

// jitterFunc returns a uniform random value in [0, n); rand.Int64N, or a
// fixed one in tests.
type jitterFunc func(n int64) int64

// Retry and renewal timing.
const (
	// DefaultRetryBase is the wait after a first failed issuance; each
	// further failure doubles it, up to DefaultRetryMax.
	DefaultRetryBase = time.Minute
	DefaultRetryMax  = time.Hour
	// ariPoll bounds the sleep of a certificate whose renewal time comes
	// from the CA's renewal information: the CA may move the window (RFC
	// 9773, section 4.3), e.g. after a mass revocation.
	ariPoll = 6 * time.Hour
)

// renewalTime is when leaf is due for renewal without ARI: renewBefore
// ahead of its expiry when set, else when a third of its lifetime is
// left; then moved earlier by up to 5% of the lifetime (at most an hour)
// so that certificates issued together do not all renew at once.
func renewalTime(leaf *x509.Certificate, renewBefore time.Duration, rnd jitterFunc) time.Time {
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	at := leaf.NotAfter.Add(-life / 3)
	if renewBefore > 0 {
		at = leaf.NotAfter.Add(-renewBefore)
	}
	if j := min(life/20, time.Hour); j > 0 {
		at = at.Add(-time.Duration(rnd(int64(j))))
	}
	return at
}

// backoff is the wait after the n-th consecutive failure (n >= 1):
// base, 2*base, 4*base... capped at max, each within ±10% so that names
// failing together spread out.
func backoff(n int, base, max time.Duration, rnd jitterFunc) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	if j := d / 10; j > 0 {
		d += time.Duration(rnd(int64(2*j))) - j
	}
	return d
}
