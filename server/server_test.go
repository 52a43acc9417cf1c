package server

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/proxynow/proxynow/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func parse(t *testing.T, src string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.hcl", []byte(src))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

func echoBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.Copy(c, c)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func udpEchoBackend(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().String()
}

func TestServerRoutesTCPAndUDP(t *testing.T) {
	cfg := parse(t, `
entrypoint "tcp" { address = "127.0.0.1:0" }
entrypoint "udp" {
  address = "127.0.0.1:0"
  network = "udp"
}
tcp_route "t" {
  entrypoints = ["tcp"]
  service     = "echo"
}
udp_route "u" {
  entrypoints = ["udp"]
  service     = "uecho"
}
service "echo" {
  backend "`+echoBackend(t)+`" {}
}
service "uecho" {
  backend "`+udpEchoBackend(t)+`" {}
}
`)
	s := newServer(t, cfg)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	for _, network := range []string{"tcp", "udp"} {
		t.Run(network, func(t *testing.T) {
			c, err := net.Dial(network, s.Addr(network).String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			c.Write([]byte("ping"))
			buf := make([]byte, 4)
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
				t.Fatalf("got %q, %v", buf, err)
			}
		})
	}
}

func TestStartNamesEntrypointOnBindFailure(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := parse(t, `
entrypoint "first" { address = "127.0.0.1:0" }
entrypoint "taken" { address = "`+busy.Addr().String()+`" }
tcp_route "r" {
  entrypoints = ["first", "taken"]
  service     = "s"
}
service "s" {
  backend "127.0.0.1:1" {}
}
`)
	s := newServer(t, cfg)
	err = s.Start()
	if err == nil {
		s.Close()
		t.Fatal("Start succeeded on a port in use")
	}
	for _, want := range []string{`entrypoint "taken"`, busy.Addr().String(), "address already in use"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// The entrypoint bound before the failure was released (goleak checks
	// its goroutine; rebinding checks the socket).
	if a := s.Addr("first"); a != nil {
		ln, err := net.Listen("tcp", a.String())
		if err != nil {
			t.Fatalf("first entrypoint's port still held: %v", err)
		}
		ln.Close()
	}
}

func TestShutdownDrains(t *testing.T) {
	cfg := parse(t, `
entrypoint "tcp" { address = "127.0.0.1:0" }
tcp_route "t" {
  entrypoints = ["tcp"]
  service     = "echo"
}
service "echo" {
  backend "`+echoBackend(t)+`" {}
}
`)
	s := newServer(t, cfg)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", s.Addr("tcp").String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	// One round trip first: a connection still in the kernel's accept
	// queue when the listener closes is reset, as with any server.
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatalf("echo before Shutdown: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	time.Sleep(50 * time.Millisecond)
	c.Write([]byte("late"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("open connection broken by Shutdown: %v", err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown = %v after the last connection closed", err)
	}
}

func newServer(t *testing.T, cfg *config.Config) *Server {
	t.Helper()
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
