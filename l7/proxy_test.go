package l7

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proxynow/proxynow/config"
)

// A try whose headers do not arrive within per_try_timeout is abandoned
// and a GET goes to the next backend; the slow backend is released when
// the try ends, not when the slow handler returns.
func TestPerTryTimeout(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var slowHits atomic.Int64
	_, slow := backend(t, func(w http.ResponseWriter, r *http.Request) {
		slowHits.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	_, fast := backend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fast") })
	svc := svcFor(slow, fast)
	svc.Balancer = config.BalancerRoundRobin
	svc.HTTP.Retry = &config.Retry{Attempts: 2, PerTryTimeout: 250 * time.Millisecond}
	f := newFront(t, svc)
	// Round robin sends every other request to the slow backend first; on a
	// loaded machine its handler may start after the try ended, so a few
	// more requests make sure one reached it.
	for i := 0; i < 4 || slowHits.Load() == 0 && i < 20; i++ {
		resp, body := get(t, f.url+"/", nil)
		if resp.StatusCode != 200 || body != "fast" {
			t.Fatalf("GET: %d %q: a try past per_try_timeout must be retried on the other backend", resp.StatusCode, body)
		}
	}
	if slowHits.Load() == 0 {
		t.Fatal("the slow backend was never tried")
	}

	// With one backend, the timed-out try is the answer: 504.
	svc1 := svcFor(slow)
	svc1.HTTP.Retry = &config.Retry{Attempts: 1, PerTryTimeout: 100 * time.Millisecond}
	f1 := newFront(t, svc1)
	start := time.Now()
	if resp, _ := get(t, f1.url+"/", nil); resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504", resp.StatusCode)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("504 after %v; per_try_timeout is 100ms (response_header_timeout 2s)", d)
	}
}

// The per-try deadline covers the headers only: a body that takes longer
// than per_try_timeout after them is not cut.
func TestPerTryTimeoutSparesBody(t *testing.T) {
	_, be := backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "late")
	})
	svc := svcFor(be)
	svc.HTTP.Retry = &config.Retry{Attempts: 2, PerTryTimeout: 100 * time.Millisecond}
	f := newFront(t, svc)
	if resp, body := get(t, f.url+"/", nil); resp.StatusCode != 200 || body != "late" {
		t.Fatalf("GET: %d %q, want the whole body", resp.StatusCode, body)
	}
}

// buildHeader drops hop-by-hop fields, the ones Connection names and
// untrusted forwarding headers, and never lets Connection remove the
// headers proxynow adds.
func TestBuildHeader(t *testing.T) {
	in, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET /x HTTP/1.1\r\nHost: a.test\r\n" +
		"Connection: keep-alive, X-Secret, X-Forwarded-For, Via\r\nKeep-Alive: 5\r\nX-Secret: s\r\nTe: trailers, deflate\r\n" +
		"Upgrade: h2c\r\nHttp2-Settings: AAA\r\nX-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nVia: 1.0 evil\r\n" +
		"X-Request-Id: client\r\nAccept: a\r\nAccept: b\r\n\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	ri := &reqInfo{peer: netip.MustParseAddr("192.0.2.1"), requestID: "id1"}
	var o outbound
	h := o.buildHeader(in, ri, "")
	want := http.Header{
		"Accept":            {"a", "b"},
		"Te":                {"trailers"},
		"X-Forwarded-For":   {"192.0.2.1"},
		"Forwarded":         {`for=192.0.2.1;proto=http;host="a.test"`},
		"X-Forwarded-Proto": {"http"},
		"X-Forwarded-Host":  {"a.test"},
		"Via":               {"1.0 evil, 1.1 proxynow"},
		"X-Request-Id":      {"id1"},
		"User-Agent":        {""},
	}
	if len(h) != len(want) {
		t.Errorf("got %d fields %v, want %d", len(h), h, len(want))
	}
	for k, v := range want {
		if strings.Join(h[k], "|") != strings.Join(v, "|") {
			t.Errorf("%s = %q, want %q", k, h[k], v)
		}
	}
	// Appending to a copied field must not write into the inbound header.
	h["Accept"] = append(h["Accept"], "c")
	if got := in.Header["Accept"]; len(got) != 2 {
		t.Fatalf("inbound Accept changed: %q", got)
	}

	// A trusted peer's forwarding headers are appended to.
	ri.trusted = true
	h = new(outbound).buildHeader(in, ri, "websocket")
	if got := h.Get("X-Forwarded-For"); got != "6.6.6.6, 192.0.2.1" {
		t.Errorf("trusted X-Forwarded-For = %q", got)
	}
	if got := h.Get("Forwarded"); got != `for=6.6.6.6, for=192.0.2.1;proto=http;host="a.test"` {
		t.Errorf("trusted Forwarded = %q", got)
	}
	if h.Get("Upgrade") != "websocket" || h.Get("Connection") != "Upgrade" {
		t.Errorf("upgrade: Upgrade %q Connection %q", h.Get("Upgrade"), h.Get("Connection"))
	}
}

func TestIsEventStream(t *testing.T) {
	for ct, want := range map[string]bool{
		"text/event-stream":                 true,
		"Text/Event-Stream; charset=utf-8":  true,
		" text/event-stream ;x=1":           true,
		"text/event-streams":                false,
		"text/plain":                        false,
		"":                                  false,
		"application/json; x=text/event-st": false,
	} {
		if got := isEventStream([]string{ct}); got != want {
			t.Errorf("isEventStream(%q) = %v, want %v", ct, got, want)
		}
	}
	if isEventStream(nil) {
		t.Error("no Content-Type is not an event stream")
	}
}

func TestCleanQuery(t *testing.T) {
	for in, want := range map[string]string{
		"a=1&b=2": "a=1&b=2",
		"a=%41":   "a=%41",
		"a=1;b=2": "",
		"a=%zz&b": "b=",
		"":        "",
		// Bytes a request-target cannot hold (an HTTP/2 :path may):
		// percent-encoded, the rest as it was.
		"a=x y&b=2":       "a=x%20y&b=2",
		"a=\t\x01\x7f":    "a=%09%01%7F",
		"a=1#frag":        "a=1%23frag",
		"q=x\r\nInjected": "q=x%0D%0AInjected",
	} {
		if got := cleanQuery(in); got != want {
			t.Errorf("cleanQuery(%q) = %q, want %q", in, got, want)
		}
	}
}

// A backend's 103 Early Hints reaches the client before the final answer,
// with the backend's fields only, on the fast path (GET) and through
// net/http's Transport (a request with a body); the final answer keeps the
// request id.
func TestInformationalForwarded(t *testing.T) {
	_, be := backend(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		io.WriteString(w, "final")
	})
	f := newFront(t, svcFor(be))
	for _, method := range []string{"GET", "POST"} {
		t.Run(method, func(t *testing.T) {
			var codes []int
			var link, rid string
			trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
				codes = append(codes, code)
				link, rid = h.Get("Link"), h.Get("X-Request-Id")
				return nil
			}}
			var body io.Reader
			if method == "POST" {
				body = strings.NewReader("payload")
			}
			req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), method, f.url+"/", body)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if len(codes) != 1 || codes[0] != http.StatusEarlyHints || link != "</style.css>; rel=preload" || rid != "" {
				t.Fatalf("1xx: codes %v Link %q X-Request-Id %q; want one 103 with the backend's Link only", codes, link, rid)
			}
			if resp.StatusCode != 200 || string(b) != "final" || resp.Header.Get("X-Request-Id") == "" {
				t.Fatalf("final: %d %q X-Request-Id %q", resp.StatusCode, b, resp.Header.Get("X-Request-Id"))
			}
		})
	}
}

func TestAppendQuoted(t *testing.T) {
	for in, want := range map[string]string{
		"a.test:8080":    `"a.test:8080"`,
		`we"ird\host`:    `"we\"ird\\host"`,
		"[::1]:443":      `"[::1]:443"`,
		"ctl\r\nx\x00y":  `"ctl  x y"`,
		"caf\xc3\xa9.fr": "\"caf\xc3\xa9.fr\"",
	} {
		if got := string(appendQuoted(nil, in)); got != want {
			t.Errorf("appendQuoted(%q) = %q, want %q", in, got, want)
		}
	}
}
