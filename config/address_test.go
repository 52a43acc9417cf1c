package config

import "testing"

func TestParseAddress(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantHost string
		wantPort int
		wantErr  string
	}{
		{name: "all interfaces", in: ":8080", wantHost: "", wantPort: 8080},
		{name: "ipv4", in: "127.0.0.1:8080", wantHost: "127.0.0.1", wantPort: 8080},
		{name: "ipv6 bracketed", in: "[::1]:53", wantHost: "::1", wantPort: 53},
		{name: "ipv6 canonicalised", in: "[0:0::1]:53", wantHost: "::1", wantPort: 53},
		{name: "hostname", in: "localhost:80", wantHost: "localhost", wantPort: 80},
		{name: "hostname lower-cased", in: "DB.Example.COM:5432", wantHost: "db.example.com", wantPort: 5432},
		{name: "port zero", in: "127.0.0.1:0", wantHost: "127.0.0.1", wantPort: 0},
		{name: "max port", in: ":65535", wantPort: 65535},
		{name: "underscore host", in: "_srv.example:1", wantHost: "_srv.example", wantPort: 1},
		{name: "missing port", in: "8080", wantErr: "missing port in address"},
		{name: "empty port", in: "127.0.0.1:", wantErr: "missing port number after the colon"},
		{name: "port too large", in: ":65536", wantErr: "port 65536 is out of range 0..65535"},
		{name: "huge port", in: ":99999999999999999999", wantErr: "port 99999999999999999999 is out of range 0..65535"},
		{name: "negative port", in: ":-1", wantErr: `port "-1" is not a number`},
		{name: "plus port", in: ":+80", wantErr: `port "+80" is not a number`},
		{name: "named port", in: "localhost:http", wantErr: `port "http" is not a number`},
		{name: "unbracketed ipv6", in: "::1:53", wantErr: "too many colons in address"},
		{name: "space in host", in: "bad host:80", wantErr: `invalid host "bad host"`},
		{name: "bad ipv4", in: "10.0.0.256:80", wantErr: `invalid host "10.0.0.256"`},
		{name: "bad ipv6", in: "[::g]:80", wantErr: `invalid IPv6 address "::g"`},
		{name: "label starts with dash", in: "-a.example:80", wantErr: `invalid host "-a.example"`},
		{name: "empty label", in: "a..b:80", wantErr: `invalid host "a..b"`},
		{name: "url", in: "http://127.0.0.1:80", wantErr: "URLs are not addresses; use host:port"},
		{name: "empty", in: "", wantErr: `address is empty; use host:port, e.g. ":8080"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hp, err := parseAddress(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("parseAddress(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseAddress(%q): %v", tt.in, err)
			}
			if hp.host != tt.wantHost || hp.port != tt.wantPort {
				t.Errorf("parseAddress(%q) = %q, %d; want %q, %d", tt.in, hp.host, hp.port, tt.wantHost, tt.wantPort)
			}
		})
	}
}

func TestListenKey(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{name: "empty and ipv4 wildcard", a: ":8080", b: "0.0.0.0:8080", same: true},
		{name: "empty and ipv6 wildcard", a: ":8080", b: "[::]:8080", same: true},
		{name: "same ip", a: "127.0.0.1:1", b: "127.0.0.1:1", same: true},
		{name: "ipv6 spellings", a: "[::1]:1", b: "[0::1]:1", same: true},
		{name: "other port", a: ":8080", b: ":8081", same: false},
		{name: "other host", a: "127.0.0.1:1", b: "127.0.0.2:1", same: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, errA := parseAddress(tt.a)
			b, errB := parseAddress(tt.b)
			if errA != nil || errB != nil {
				t.Fatal(errA, errB)
			}
			if got := a.listenKey(NetworkTCP) == b.listenKey(NetworkTCP); got != tt.same {
				t.Errorf("same key = %v, want %v", got, tt.same)
			}
			if a.listenKey(NetworkTCP) == b.listenKey(NetworkUDP) {
				t.Error("tcp and udp keys must differ")
			}
		})
	}
}
