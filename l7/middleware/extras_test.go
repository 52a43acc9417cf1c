package middleware

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/quic-go/quic-go/http3"

	"github.com/proxynow/proxynow/config"
)

type (
	fakeNotify struct{ *httptest.ResponseRecorder }
	fakePush   struct{ *httptest.ResponseRecorder }
	fakeH2     struct{ fakeNotify }
	// fakeH3 counts the take-overs it allowed, and notes the status
	// written before the last.
	fakeH3 struct {
		*httptest.ResponseRecorder
		taken, status, takenAt int
	}
)

func (fakeNotify) CloseNotify() <-chan bool           { return make(chan bool) }
func (fakePush) Push(string, *http.PushOptions) error { return http.ErrNotSupported }
func (fakeH2) Push(string, *http.PushOptions) error   { return http.ErrNotSupported }
func (w *fakeH3) HTTPStream() (*http3.Stream, error) {
	w.taken++
	w.takenAt = w.status
	return nil, nil
}

func (w *fakeH3) WriteHeader(code int) {
	w.status = code
	w.ResponseRecorder.WriteHeader(code)
}

func (*fakeH3) ReceivedSettings() <-chan struct{} { return nil }
func (*fakeH3) Settings() *http3.Settings         { return nil }

func TestKindOf(t *testing.T) {
	cases := []struct {
		name string
		w    http.ResponseWriter
		want Kind
	}{
		{"plain", httptest.NewRecorder(), KindPlain},
		{"CloseNotifier", fakeNotify{httptest.NewRecorder()}, KindNotify},
		{"CloseNotifier and Pusher", fakeH2{fakeNotify{httptest.NewRecorder()}}, KindH2},
		{"Pusher alone: hidden", fakePush{httptest.NewRecorder()}, KindPlain},
		{"HTTPStreamer and Settingser", &fakeH3{ResponseRecorder: httptest.NewRecorder()}, KindH3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := KindOf(tc.w); got != tc.want {
				t.Errorf("KindOf = %d, want %d", got, tc.want)
			}
		})
	}
}

// A wrapper that would write after the handler refuses to let the HTTP/3
// stream go when it cannot stop: error_pages after a status it answers
// with a page, compress with body bytes it holds. Otherwise the take-over
// reaches the server's writer.
func TestTakeStreamThroughWrappers(t *testing.T) {
	pages, err := Build(&config.Middleware{Name: "e", Kind: config.MWErrorPages, ErrorPages: &config.ErrorPages{
		Statuses: []config.StatusRange{{Lo: 500, Hi: 599}}, Service: "pages", Path: "/{status}"}}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	comp := buildCompressMW(t, config.Compress{})
	cases := []struct {
		name   string
		mw     Middleware
		before func(w http.ResponseWriter)
		want   error // nil: taken
	}{
		{"error page due", pages, func(w http.ResponseWriter) { w.WriteHeader(502) }, errStreamIntercepted},
		{"no error page", pages, func(w http.ResponseWriter) { w.WriteHeader(200) }, nil},
		{"compress holds body", comp, func(w http.ResponseWriter) { w.Write([]byte("held")) }, errStreamBody},
		{"compress holds header", comp, func(w http.ResponseWriter) { w.WriteHeader(200) }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := &fakeH3{ResponseRecorder: httptest.NewRecorder()}
			var got error
			h := tc.mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tc.before(w)
				hs, ok := w.(http3.HTTPStreamer)
				if !ok {
					t.Fatal("no HTTPStreamer over a writer that has one")
				}
				_, got = hs.HTTPStream()
			}))
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set("Accept-Encoding", "gzip")
			h.ServeHTTP(in, req)
			if !errors.Is(got, tc.want) {
				t.Fatalf("HTTPStream: %v, want %v", got, tc.want)
			}
			if taken := tc.want == nil; (in.taken == 1) != taken {
				t.Errorf("the server's writer took the stream %d times; want taken: %v", in.taken, taken)
			}
			if tc.want == nil && in.takenAt != 200 {
				t.Errorf("the status written before the take-over reached the server's writer as %d, want 200", in.takenAt)
			}
		})
	}
}
