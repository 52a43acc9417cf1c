package l7

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/proxynow/proxynow/config"
)

// brokenBody yields some bytes, then fails as a client's upload does when
// it breaks off or crosses max_body.
type brokenBody struct {
	sent bool
	err  error
}

func (b *brokenBody) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		return copy(p, strings.Repeat("x", 64)), nil
	}
	return 0, b.err
}

func (b *brokenBody) Close() error { return nil }

// TestClientBodyErrorSparesBreaker: a request whose body cannot be read
// is answered 400 (413 past max_body, 408 when it stalled) and does not count as a backend
// failure, so a client sending broken or oversized uploads cannot open the
// service's circuit breaker for everyone else.
func TestClientBodyErrorSparesBreaker(t *testing.T) {
	_, u := backend(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	})
	svc := svcFor(u)
	svc.HTTP.CircuitBreaker = &config.CircuitBreaker{FailureRatio: 0.5, MinRequests: 3, Interval: time.Minute, OpenTimeout: time.Minute, FailureStatusLo: 500, FailureStatusHi: 599}
	px, _ := newTestProxy(t, svc)
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"broken upload", errors.New("unexpected EOF in chunked body"), http.StatusBadRequest},
		{"max_body crossed", &http.MaxBytesError{Limit: 10}, http.StatusRequestEntityTooLarge},
		{"stalled upload", fmt.Errorf("read body: %w", os.ErrDeadlineExceeded), http.StatusRequestTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i := range 6 {
				req := httptest.NewRequest("POST", "http://example.com/up", &brokenBody{err: tc.err})
				req.ContentLength = -1
				rec := httptest.NewRecorder()
				px.ServeHTTP(rec, req)
				if rec.Code != tc.want {
					t.Fatalf("request %d: status %d, want %d", i, rec.Code, tc.want)
				}
			}
			rec := httptest.NewRecorder()
			px.ServeHTTP(rec, httptest.NewRequest("GET", "http://example.com/", nil))
			if rec.Code != http.StatusOK {
				t.Fatalf("a sound request after the broken uploads: status %d, want 200 (breaker opened?)", rec.Code)
			}
		})
	}
}

// TestProxyBodyReadAllocs: recording a failed read must not cost the
// successful ones an allocation (a body is read in many calls).
func TestProxyBodyReadAllocs(t *testing.T) {
	src := strings.NewReader("")
	b := &proxyBody{rc: io.NopCloser(src)}
	buf := make([]byte, 64)
	allocs := testing.AllocsPerRun(100, func() {
		src.Reset("some request body bytes")
		for {
			if _, err := b.Read(buf); err != nil {
				break
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("proxyBody.Read allocates %v times per body, want 0", allocs)
	}
}
