//go:build linux

package integration

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

func watchConfig(body string) string {
	return hcl(`
global {
  watch        = true
  grace_period = "1s"
}
entrypoint "web" { address = "127.0.0.1:0" }
http_route "r" {
  entrypoints = ["web"]
  service     = "s"
}
service "s" {
  respond { body = %q }
}
`, body)
}

// TestReloadWatch: with global { watch = true }, replacing the file (write
// and rename, as editors do) reloads it; an invalid edit is rejected with
// its diagnostics and changes nothing; an edit in place reloads too.
func TestReloadWatch(t *testing.T) {
	p := startReloadable(t, watchConfig("v1"))
	url := "http://" + p.addr("web")
	c := newH1Client(t)
	body := func() string { return mustDo(t, c, url, reqSpec{}).body }
	if b := body(); b != "v1" {
		t.Fatalf("body %q", b)
	}

	ok0, rej0 := p.reloads()
	writeConfig(t, p.file, watchConfig("v2"))
	if !p.waitReload(t, ok0, rej0) {
		t.Fatal("valid edit rejected")
	}
	if !strings.Contains(p.log.String(), `"trigger":"file change"`) {
		t.Fatalf("reload not triggered by the file watch:\n%s", p.log.String())
	}
	if b := body(); b != "v2" {
		t.Fatalf("after the edit: body %q", b)
	}

	ok0, rej0 = p.reloads()
	writeConfig(t, p.file, strings.Replace(watchConfig("v3"), `service     = "s"`, `service     = "t"`, 1))
	if p.waitReload(t, ok0, rej0) {
		t.Fatal("invalid edit accepted")
	}
	if !strings.Contains(p.log.String(), fmt.Sprintf(`"diagnostic":"%s:`, p.file)) {
		t.Fatalf("rejection without a positioned diagnostic:\n%s", p.log.String())
	}
	if b := body(); b != "v2" {
		t.Fatalf("after the invalid edit: body %q, want v2 unchanged", b)
	}

	// An edit in place (truncate and write) is seen as well.
	ok0, rej0 = p.reloads()
	src := "log {\n  level  = \"info\"\n  format = \"json\"\n}\n" + watchConfig("v4")
	if err := os.WriteFile(p.file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if !p.waitReload(t, ok0, rej0) {
		t.Fatal("in-place edit rejected")
	}
	if b := body(); b != "v4" {
		t.Fatalf("after the in-place edit: body %q", b)
	}
}
