package l7

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/upstream"
)

// TestDialFailureWarns checks that a request moved to another backend
// after a refused dial leaves a warn line naming the service, the backend
// and the error, as the TCP proxy's failed dial does: the client got its
// answer, so nothing else tells the operator a backend is refusing.
func TestDialFailureWarns(t *testing.T) {
	dead := closedAddr(t)
	_, good := backend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "good") })
	svc := svcFor("http://"+dead, good)
	var logs lockedBuffer
	pool, err := upstream.NewPool(svc, upstream.Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	px := NewProxy(svc, pool, nil)
	defer px.CloseIdleConnections()
	ts := httptest.NewServer(NewEntry("web", routeAll(t, &Route{Config: &config.HTTPRoute{Name: "r", Service: svc.Name}, Handler: px}), nil, nil))
	defer ts.Close()
	// Round robin sends one of the first two requests to the dead backend.
	for range 2 {
		if resp, body := get(t, ts.URL+"/", nil); resp.StatusCode != 200 || body != "good" {
			t.Fatalf("status %d body %q, want 200 good", resp.StatusCode, body)
		}
	}
	var warn string
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, `msg="backend dial failed"`) {
			warn = line
		}
	}
	for _, want := range []string{"level=WARN", "service=svc", "backend=" + dead, "connection refused"} {
		if !strings.Contains(warn, want) {
			t.Fatalf("dial failure log line %q lacks %q; log:\n%s", warn, want, logs.String())
		}
	}
}
