package middleware

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/goleak"

	"github.com/proxynow/proxynow/config"
)

// TestInFlightRetryAfter checks over a real connection that an in_flight
// refusal carries Retry-After, as rate_limit's 429 does, so that clients
// and SDKs that honour it back off instead of retrying at once.
func TestInFlightRetryAfter(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	f, err := buildInFlight(&config.InFlight{Max: 1}, trafficEnv)
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(f.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			close(entered)
			<-release
		}
	})))
	defer srv.Close()
	client := srv.Client()
	defer client.CloseIdleConnections()

	held := make(chan error, 1)
	go func() {
		resp, err := client.Get(srv.URL + "/hold")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
		held <- err
	}()
	<-entered
	resp, err := client.Get(srv.URL + "/")
	close(release)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", resp.StatusCode)
	}
	if got := resp.Header.Get("Retry-After"); got != "1" {
		t.Fatalf("Retry-After %q, want \"1\"", got)
	}
}
