package server

import (
	"context"
	"regexp"
	"slices"
	"testing"
)

// shadowThenUnused has a shadowed route's warning (line 7) before the
// configuration's own "not used" warning (line 15).
const shadowThenUnused = `entrypoint "web" { address = "127.0.0.1:0" }
http_route "all" {
  entrypoints = ["web"]
  priority    = 100
  service     = "s"
}
http_route "api" {
  entrypoints = ["web"]
  path_prefix = "/api/"
  service     = "s"
}
service "s" {
  respond { body = "x" }
}
service "spare" {
  respond { body = "y" }
}
`

// TestWarningsInFileOrder: at start, the configuration's warnings and the
// shadowed routes' are logged together in file order; a reload that
// leaves the routes alone logs the configuration's again, not the
// route's.
func TestWarningsInFileOrder(t *testing.T) {
	f := newReloaderFixture(t, shadowThenUnused, false)
	warnings := func() []string {
		var out []string
		for _, m := range regexp.MustCompile(`warning=".*?proxynow\.hcl:(\d+:\d+): warning: `).FindAllStringSubmatch(f.log.String(), -1) {
			out = append(out, m[1])
		}
		return out
	}
	if got, want := warnings(), []string{"7:12", "15:9"}; !slices.Equal(got, want) {
		t.Fatalf("warnings logged at %q, want %q; log:\n%s", got, want, f.log.String())
	}
	if _, err := f.rl.Reload(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	if got, want := warnings(), []string{"7:12", "15:9", "15:9"}; !slices.Equal(got, want) {
		t.Fatalf("warnings logged at %q after a reload, want %q; log:\n%s", got, want, f.log.String())
	}
}
