package server

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/proxynow/proxynow/config"
)

// fill sets every exported field reachable from v: durations to 90s,
// other numbers to 1, strings to "s", booleans true; it allocates
// pointers and gives slices and maps one element. Types that encode
// themselves (netip.Prefix) stay zero. It returns how many durations it
// set.
func fill(v reflect.Value, depth int) int {
	if depth > 12 || holdsMarshaler(v.Type()) {
		return 0
	}
	switch v.Kind() {
	case reflect.Int64:
		if v.Type() == durationType {
			v.SetInt(int64(90 * time.Second))
			return 1
		}
		v.SetInt(1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1)
	case reflect.String:
		v.SetString("s")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		return fill(v.Elem(), depth+1)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		return fill(v.Index(0), depth+1)
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k := reflect.New(v.Type().Key()).Elem()
		fill(k, depth+1)
		e := reflect.New(v.Type().Elem()).Elem()
		n := fill(e, depth+1)
		v.SetMapIndex(k, e)
		return n
	case reflect.Struct:
		n := 0
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				n += fill(v.Field(i), depth+1)
			}
		}
		return n
	}
	return 0
}

func holdsMarshaler(t reflect.Type) bool {
	return t.Implements(marshalerType) || t.Implements(textMarshaler) ||
		reflect.PointerTo(t).Implements(marshalerType) || reflect.PointerTo(t).Implements(textMarshaler)
}

func encode(t *testing.T, v any) string {
	t.Helper()
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestDurationsAsTextEveryField fills every field of a Config, so that a
// duration field added anywhere later is covered: /config's JSON must be
// encoding/json's byte for byte, but with each duration as "1m30s"
// instead of 90000000000. A zero Config (every omitempty applies) must
// encode as encoding/json encodes it, its one duration without omitempty
// as "0s".
func TestDurationsAsTextEveryField(t *testing.T) {
	var cfg config.Config
	n := fill(reflect.ValueOf(&cfg).Elem(), 0)
	if n < 20 {
		t.Fatalf("filled %d durations; the config has more than 20 duration fields", n)
	}
	plain := encode(t, &cfg)
	if got := strings.Count(plain, ": 90000000000"); got != n {
		t.Fatalf("encoding/json wrote %d durations as nanoseconds, want the %d filled", got, n)
	}
	want := strings.ReplaceAll(plain, ": 90000000000", `: "1m30s"`)
	if got := encode(t, durationsAsText(&cfg)); got != want {
		t.Errorf("durationsAsText:\n%s\nwant:\n%s", got, want)
	}
	var zero config.Config
	want = strings.Replace(encode(t, &zero), `"grace_period": 0`, `"grace_period": "0s"`, 1)
	if got := encode(t, durationsAsText(&zero)); got != want {
		t.Errorf("zero config:\n%s\nwant:\n%s", got, want)
	}
}

// TestAdminConfigDurations reads GET /config of a running server: the
// durations read as written in HCL (or as Go prints their defaults), and
// the secrets stay redacted.
func TestAdminConfigDurations(t *testing.T) {
	s := started(t, `
global { grace_period = "1m30s" }
admin { address = "127.0.0.1:0" }
entrypoint "web" {
  address = "127.0.0.1:0"
  timeouts {
    read_header = "250ms"
  }
}
http_route "r" {
  entrypoints = ["web"]
  middlewares = ["auth"]
  service     = "api"
}
middleware "auth" {
  basic_auth {
    users = ["alice:`+testHash+`"]
  }
}
service "api" {
  backend "http://127.0.0.1:9" {}
  health_check {
    path     = "/healthz"
    interval = "2m"
    timeout  = "3s"
  }
}
`)
	resp, err := http.Get("http://" + s.AdminAddr().String() + "/config")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /config: %d %v", resp.StatusCode, err)
	}
	body := string(b)
	for _, want := range []string{`"grace_period": "1m30s"`, `"read_header": "250ms"`, `"interval": "2m0s"`,
		`"timeout": "3s"`, `"alice:<redacted>"`} {
		if !strings.Contains(body, want) {
			t.Errorf("/config lacks %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, "000000") || strings.Contains(body, testHash) {
		t.Errorf("/config shows nanoseconds or a password hash:\n%s", body)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Errorf("/config is not JSON: %v", err)
	}
}
