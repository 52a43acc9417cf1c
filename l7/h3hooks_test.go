package l7

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestEarlyData(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		tls       *tls.ConnectionState
		wantCode  int
		wantEarly string
	}{
		{"GET in early data", http.MethodGet, &tls.ConnectionState{HandshakeComplete: false}, 200, "1"},
		{"HEAD in early data", http.MethodHead, &tls.ConnectionState{}, 200, "1"},
		{"POST in early data", http.MethodPost, &tls.ConnectionState{}, http.StatusTooEarly, ""},
		{"DELETE in early data", http.MethodDelete, &tls.ConnectionState{}, http.StatusTooEarly, ""},
		{"POST after handshake", http.MethodPost, &tls.ConnectionState{HandshakeComplete: true}, 200, ""},
		{"GET after handshake", http.MethodGet, &tls.ConnectionState{HandshakeComplete: true}, 200, ""},
		{"plaintext", http.MethodPost, nil, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var early string
			h := EarlyData(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { early = r.Header.Get("Early-Data") }))
			r := httptest.NewRequest(tc.method, "/", nil)
			r.TLS = tc.tls
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.wantCode || early != tc.wantEarly {
				t.Fatalf("got %d Early-Data %q, want %d %q", w.Code, early, tc.wantCode, tc.wantEarly)
			}
		})
	}
}

func TestAltSvc(t *testing.T) {
	h := AltSvc(8443, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Alt-Svc", `h3=":9999"`) // a backend's own, as ReverseProxy copies it
	}))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.TLS = &tls.ConnectionState{HandshakeComplete: true}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if got := w.Header().Values("Alt-Svc"); len(got) == 0 || got[0] != `h3=":8443"; ma=86400` {
		t.Fatalf("Alt-Svc %q", got)
	}
	// The shared value was not appended to in place.
	w2 := httptest.NewRecorder()
	h.ServeHTTP(w2, r)
	if got := w2.Header().Values("Alt-Svc"); len(got) != 2 || got[0] != `h3=":8443"; ma=86400` {
		t.Fatalf("second response Alt-Svc %q", got)
	}
	r.TLS = nil
	w3 := httptest.NewRecorder()
	AltSvc(8443, http.NotFoundHandler()).ServeHTTP(w3, r)
	if got := w3.Header().Get("Alt-Svc"); got != "" {
		t.Fatalf("Alt-Svc %q on a plaintext response", got)
	}
}
