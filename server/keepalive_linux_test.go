package server

import (
	"net"
	"testing"
	"time"

	"github.com/proxynow/proxynow/l4"
	"golang.org/x/sys/unix"
)

// TestClientKeepAliveInherited: a connection accepted on an entrypoint's
// socket has TCP keep-alive on with clientKeepAlive's settings, set once
// on the listening socket (Linux clones them into each accepted one), and
// a UDP entrypoint's socket still binds with the same ListenConfig.
func TestClientKeepAliveInherited(t *testing.T) {
	l := &listener{key: listenerKey{network: "tcp", address: "127.0.0.1:0"}}
	if err := l.bind(); err != nil {
		t.Fatal(err)
	}
	defer l.tcpLn.Close()
	c, err := net.Dial("tcp", l.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l.tcpLn.SetDeadline(time.Now().Add(10 * time.Second))
	sc, err := l.tcpLn.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	raw, err := sc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		level, opt, v int
	}{
		"SO_KEEPALIVE":  {unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		"TCP_KEEPIDLE":  {unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int(clientKeepAlive.Idle.Seconds())},
		"TCP_KEEPINTVL": {unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, int(clientKeepAlive.Interval.Seconds())},
		"TCP_KEEPCNT":   {unix.IPPROTO_TCP, unix.TCP_KEEPCNT, clientKeepAlive.Count},
		"TCP_NODELAY":   {unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
	}
	raw.Control(func(fd uintptr) {
		for name, w := range want {
			got, err := unix.GetsockoptInt(int(fd), w.level, w.opt)
			if err != nil || got != w.v {
				t.Errorf("%s = %d, %v; want %d", name, got, err, w.v)
			}
		}
	})

	u := &listener{key: listenerKey{network: "udp", address: "127.0.0.1:0"}, udp: &l4.UDPServer{}}
	if err := u.bind(); err != nil {
		t.Fatalf("UDP entrypoint: %v", err)
	}
	u.udpPC.Close()
}
