package server

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// TestReloadAccessLogFailedBindRemovesNewFile: a reload that opened a new
// access log file and then failed (a new entrypoint's address is taken)
// removes the file it created, so a failed reload leaves nothing behind;
// a file that existed before is kept as it was.
func TestReloadAccessLogFailedBindRemovesNewFile(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, tt := range []struct {
		name    string
		existed string // the new path's content before the reload; "-": absent
	}{
		{name: "created by the reload", existed: "-"},
		{name: "existed empty", existed: ""},
		{name: "existed with lines", existed: "{\"path\":\"/old\"}\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
			if tt.existed != "-" {
				if err := os.WriteFile(b, []byte(tt.existed), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			s := started(t, withAccessLog(a, "json", 64))
			src := withAccessLog(b, "json", 64) + fmt.Sprintf("entrypoint %q { address = %q }\n", "taken", taken.Addr().String())
			if _, err := s.Reload(parse(t, src)); err == nil {
				t.Fatal("Reload succeeded; want a bind error")
			}
			got, err := os.ReadFile(b)
			switch {
			case tt.existed == "-" && !os.IsNotExist(err):
				t.Errorf("%s left behind by the failed reload (read: %q, %v)", b, got, err)
			case tt.existed != "-" && err != nil:
				t.Errorf("%s, which existed before, is gone: %v", b, err)
			case tt.existed != "-" && string(got) != tt.existed:
				t.Errorf("%s holds %q, want %q as before", b, got, tt.existed)
			}
			if runtime.GOOS == "linux" && fdsOn(t, b) != 0 {
				t.Errorf("%s still open after the failed reload", b)
			}
			if got := s.Config().Log.Access.Path; got != a {
				t.Errorf("config's access log path %s after a failed reload, want %s", got, a)
			}
		})
	}
}
