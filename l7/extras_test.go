package l7

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/quic-go/quic-go/http3"

	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/l7/middleware"
)

// extrasChain is proxynow's handler as a server runs it (the observer,
// the entry, the router) with every middleware that wraps the
// ResponseWriter on the route, before h.
func extrasChain(t *testing.T, h http.Handler) http.Handler {
	t.Helper()
	blocks := []*config.Middleware{
		{Name: "c", Kind: config.MWCompress, Compress: &config.Compress{}},
		{Name: "e", Kind: config.MWErrorPages, ErrorPages: &config.ErrorPages{
			Statuses: []config.StatusRange{{Lo: 500, Hi: 599}}, Service: "pages", Path: "/{status}"}},
		{Name: "h", Kind: config.MWHeaders, Headers: &config.Headers{
			Response: config.HeaderOps{Set: map[string]string{"X-Chain": "1"}}}},
		{Name: "m", Kind: config.MWMaxBody, MaxBody: &config.MaxBody{Bytes: 1 << 20}},
	}
	var mws []middleware.Middleware
	for _, b := range blocks {
		mw, err := middleware.Build(b, middleware.Env{})
		if err != nil {
			t.Fatal(err)
		}
		mws = append(mws, mw)
	}
	routes := []*config.HTTPRoute{{Name: "r", PathPrefix: "/", Service: "svc"}}
	router, err := NewRouter([]*Route{{Config: routes[0], Handler: middleware.Chain(mws...)(h)}})
	if err != nil {
		t.Fatal(err)
	}
	return NewObserver(NewEntry("web", router, nil, nil), "web", routes, NewMetrics(prometheus.NewRegistry()), nil)
}

// extrasProbe answers which optional interfaces its ResponseWriter has,
// and uses them: CloseNotify gives a channel, Push's error, the HTTP/3
// settings. On /take it takes the HTTP/3 stream over and answers on it.
func extrasProbe(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/take" {
			hs, ok := w.(http3.HTTPStreamer)
			if !ok {
				t.Error("no HTTPStreamer to take the stream with")
				return
			}
			w.WriteHeader(http.StatusOK)
			s, err := hs.HTTPStream()
			if err != nil {
				t.Errorf("HTTPStream: %v", err)
				return
			}
			io.WriteString(s, "taken over")
			s.Close()
			return
		}
		io.Copy(io.Discard, r.Body) // the max_body middleware's writer is in the chain for this body
		var got []string
		if cn, ok := w.(http.CloseNotifier); ok {
			if cn.CloseNotify() == nil {
				t.Error("CloseNotify: nil channel")
			}
			got = append(got, "CloseNotifier")
		}
		if p, ok := w.(http.Pusher); ok {
			got = append(got, fmt.Sprintf("Pusher(%v)", p.Push("/pushed", nil)))
		}
		if _, ok := w.(http3.HTTPStreamer); ok {
			got = append(got, "HTTPStreamer")
		}
		if s, ok := w.(http3.Settingser); ok {
			select {
			case <-s.ReceivedSettings():
				got = append(got, fmt.Sprintf("Settingser(%v)", s.Settings() != nil))
			case <-time.After(20 * time.Second):
				t.Error("no HTTP/3 settings 20 s into the request")
			}
		}
		if _, ok := w.(http.Flusher); !ok {
			got = append(got, "no Flusher")
		}
		io.WriteString(w, strings.Join(got, " "))
	})
}

// A handler behind the whole chain sees CloseNotifier, Pusher,
// HTTPStreamer and Settingser exactly when the server's own writer has
// them, and they work through the wrappers.
func TestWriterExtrasThroughChain(t *testing.T) {
	h := extrasChain(t, extrasProbe(t))
	pushOff := fmt.Sprintf("Pusher(%v)", http.ErrNotSupported) // Go's client turns push off
	h2Stall := startH2Front(t, h, ServerOptions{IdleTimeout: time.Minute})
	h2Bare := startH2Front(t, h, ServerOptions{}) // no stall wrapper
	std := httptest.NewServer(h)
	defer std.Close()
	h3URL := startH3(t, WriteStallHandler(h, time.Minute))
	h3 := &http3.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer h3.Close()
	h2c := h2Client(true)
	defer h2c.CloseIdleConnections()
	h1 := &http.Transport{}
	defer h1.CloseIdleConnections()

	cases := []struct {
		name string
		rt   http.RoundTripper
		url  string
		want string
	}{
		{"HTTP/1 proxynow", h1, serveFront(t, h), ""},
		{"HTTP/1 net/http", h1, std.URL, "CloseNotifier"},
		{"HTTP/2 stall wrapper", h2c, "https://" + h2Stall.tlsAddr, "CloseNotifier " + pushOff},
		{"HTTP/2", h2c, "https://" + h2Bare.tlsAddr, "CloseNotifier " + pushOff},
		{"HTTP/3", h3, h3URL, "HTTPStreamer Settingser(true)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &http.Client{Transport: tc.rt, Timeout: time.Minute}
			// A body of unknown length: max_body wraps the writer too.
			req, _ := http.NewRequest("POST", tc.url+"/probe", io.MultiReader(strings.NewReader("body")))
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Errorf("the handler saw %q, want %q", b, tc.want)
			}
			if resp.Header.Get("X-Chain") != "1" {
				t.Error("the headers middleware did not run")
			}
		})
	}

	// The stream taken over carries the status written before (the
	// compress middleware held it), and the handler's own bytes.
	t.Run("HTTP/3 take over", func(t *testing.T) {
		resp, err := (&http.Client{Transport: h3, Timeout: time.Minute}).Get(h3URL + "/take")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(b) != "taken over" {
			t.Errorf("status %d, body %q, %v", resp.StatusCode, b, err)
		}
	})
}

// startH3 serves h over HTTP/3 with quic-go on a loopback UDP port until
// the test ends, and returns its base URL.
func startH3(t *testing.T, h http.Handler) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http3.Server{Handler: h, TLSConfig: http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{guardTestCert(t)}})}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(pc) }()
	t.Cleanup(func() {
		srv.Close()
		pc.Close()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			t.Errorf("http3 Serve: %v", err)
		}
	})
	return "https://" + pc.LocalAddr().String()
}
