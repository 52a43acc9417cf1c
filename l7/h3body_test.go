package l7

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// deadlineRecorder is an http3-like ResponseWriter: SetReadDeadline ends
// the blocked body read with os.ErrDeadlineExceeded when it passes.
type deadlineRecorder struct {
	*httptest.ResponseRecorder
	pw    *io.PipeWriter
	mu    sync.Mutex
	timer *time.Timer
	calls []time.Time
}

func (d *deadlineRecorder) SetReadDeadline(t time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, t)
	if d.timer != nil {
		d.timer.Stop()
	}
	if !t.IsZero() {
		d.timer = time.AfterFunc(time.Until(t), func() { d.pw.CloseWithError(os.ErrDeadlineExceeded) })
	}
	return nil
}

func TestHTTP3SettlesBody(t *testing.T) {
	tests := []struct {
		name, method, body string
		wantCL             int64
		wantNoBody         bool
	}{
		{"empty GET", http.MethodGet, "", 0, true},
		{"empty DELETE", http.MethodDelete, "", 0, true},
		{"GET with a body", http.MethodGet, "abc", -1, false},
		{"GET with a 1-byte body", http.MethodGet, "x", -1, false},
		{"POST left alone", http.MethodPost, "", -1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			var cl int64
			var noBody bool
			h := HTTP3(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				cl, noBody = r.ContentLength, r.Body == http.NoBody
				b, err := io.ReadAll(r.Body)
				if err != nil {
					t.Errorf("read body: %v", err)
				}
				got = string(b)
			}), time.Minute)
			r := httptest.NewRequest(tc.method, "/", nil)
			// As quic-go's server: a body and no Content-Length.
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader(tc.body)), -1
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != 200 || got != tc.body || cl != tc.wantCL || noBody != tc.wantNoBody {
				t.Fatalf("got %d body %q ContentLength %d NoBody %v, want 200 %q %d %v", w.Code, got, cl, noBody, tc.body, tc.wantCL, tc.wantNoBody)
			}
		})
	}
}

func TestHTTP3StalledBodyGets408(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	w := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder(), pw: pw}
	called := false
	h := HTTP3(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }), 50*time.Millisecond)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Body, r.ContentLength = pr, -1
	h.ServeHTTP(w, r)
	if w.Code != http.StatusRequestTimeout || called {
		t.Fatalf("got %d, handler called %v; want 408 without the handler", w.Code, called)
	}
	if len(w.calls) != 2 || w.calls[0].IsZero() || !w.calls[1].IsZero() {
		t.Fatalf("SetReadDeadline calls %v: want a deadline, then none", w.calls)
	}
}

func TestHTTP3BrokenBodyGets400(t *testing.T) {
	pr, pw := io.Pipe()
	pw.CloseWithError(io.ErrUnexpectedEOF) // the client reset the stream
	h := HTTP3(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("handler called") }), time.Minute)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Body, r.ContentLength = pr, -1
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusBadRequest {
		t.Fatalf("got %d, want 400", w.Code)
	}
}
