package l7

import "testing"

// TestHeadEndLF: the end of a head whose lines end in CRLF or a bare LF
// is its first empty line, never a CRLFCRLF further on (in a body).
func TestHeadEndLF(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     int
	}{
		{"crlf", "GET / HTTP/1.1\r\nHost: h\r\n\r\nbody", 27},
		{"bare lf", "GET / HTTP/1.1\nHost: h\n\nbody", 24},
		{"lf then crlf", "GET / HTTP/1.1\nHost: h\n\r\nbody", 25},
		{"crlf then lf", "GET / HTTP/1.1\r\nHost: h\r\n\nbody", 26},
		{"body has crlfcrlf", "GET / HTTP/1.1\nHost: h\n\nab\r\n\r\n", 24},
		{"incomplete", "GET / HTTP/1.1\nHost: h\n", -1},
		{"incomplete after lf cr", "GET / HTTP/1.1\nHost: h\n\r", -1},
		{"empty", "", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := headEndLF([]byte(tc.in)); got != tc.want {
				t.Errorf("headEndLF(%q) = %d, want %d", tc.in, got, tc.want)
			}
			if tc.want > 0 && !endsHead([]byte(tc.in[:tc.want])) {
				t.Errorf("endsHead(%q) = false", tc.in[:tc.want])
			}
		})
	}
	for _, in := range []string{"GET / HTTP/1.1\r\n", "X-A: b\n", "x\r\n"} {
		if endsHead([]byte(in)) {
			t.Errorf("endsHead(%q) = true", in)
		}
	}
}

// TestCRLFHead: a head with bare LFs gets CRLFs; a CRLF head is returned
// as it is, without a copy.
func TestCRLFHead(t *testing.T) {
	for in, want := range map[string]string{
		"GET / HTTP/1.1\nHost: h\n\n":       "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\n\r\n":   "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n": "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
	} {
		if got := crlfHead(in); got != want {
			t.Errorf("crlfHead(%q) = %q, want %q", in, got, want)
		}
	}
	in := "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
	if n := testing.AllocsPerRun(10, func() { _ = crlfHead(in) }); n != 0 {
		t.Errorf("crlfHead of a CRLF head allocates %v times", n)
	}
}
