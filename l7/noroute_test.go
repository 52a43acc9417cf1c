package l7

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/proxynow/proxynow/config"
)

// TestEntryNoRouteHandler: SetNoRoute's handler gets the requests no route
// takes and CONNECT, with the client address and request id resolved as a
// route's handler would see them; matched requests never reach it.
func TestEntryNoRouteHandler(t *testing.T) {
	router, err := NewRouter([]*Route{{
		Config:  &config.HTTPRoute{Name: "r", Path: "/ok", Service: "s"},
		Handler: NewRespond(&config.Respond{Body: "x"}),
	}})
	if err != nil {
		t.Fatal(err)
	}
	e := NewEntry("web", router, nil, nil)
	var seen []string
	e.SetNoRoute(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got, want := ClientIP(r), netip.MustParseAddr("192.0.2.7"); got != want {
			t.Errorf("%s %s: ClientIP %v, want %v", r.Method, r.URL.Path, got, want)
		}
		if infoFrom(r.Context()) == nil {
			t.Errorf("%s %s: no request info", r.Method, r.URL.Path)
		}
		seen = append(seen, r.Method+" "+r.URL.Path)
		w.Header().Set("X-No-Route", "1")
		NoRoute.ServeHTTP(w, r)
	}))
	for _, tc := range []struct {
		name, method, target string
		code                 int
		noRoute              bool
	}{
		{"matched", "GET", "http://a.test/ok", 200, false},
		{"unmatched", "GET", "http://a.test/nope", 404, true},
		{"connect", "CONNECT", "http://a.test:443", 405, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen = nil
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(tc.method, tc.target, nil)
			req.RemoteAddr = "192.0.2.7:5555"
			e.ServeHTTP(rec, req)
			if rec.Code != tc.code {
				t.Errorf("status %d, want %d", rec.Code, tc.code)
			}
			if got := rec.Header().Get("X-No-Route") == "1"; got != tc.noRoute || len(seen) > 1 {
				t.Errorf("no-route handler ran: %v (%v), want %v", got, seen, tc.noRoute)
			}
			if rec.Header().Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id")
			}
		})
	}
}
