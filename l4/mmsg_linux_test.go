package l4

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

// readAll reads n datagrams from c, or fails.
func readAll(t *testing.T, c *net.UDPConn, n int) [][]byte {
	t.Helper()
	var got [][]byte
	buf := make([]byte, 2048)
	for range n {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, err := c.Read(buf)
		if err != nil {
			t.Fatalf("after %d of %d datagrams: %v", len(got), n, err)
		}
		got = append(got, bytes.Clone(buf[:k]))
	}
	return got
}

// TestMmsgConnAddressed: one sendmmsg from an unconnected IPv4 socket
// reaches two peers, each its own datagrams in order, an empty datagram
// included; more messages than one call takes go on in the next.
func TestMmsgConnAddressed(t *testing.T) {
	tx, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	var rx [2]*net.UDPConn
	for i := range rx {
		if rx[i], err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
			t.Fatal(err)
		}
		defer rx[i].Close()
	}
	w, err := newBatchWriter(tx, false)
	if err != nil {
		t.Fatal(err)
	}
	d := &dgramWriter{w: w}
	var ms []ipv4.Message
	var segs []int
	want := [2][]string{}
	for i := range batchSize + 3 {
		p := fmt.Sprintf("d%d", i)
		if i == 5 {
			p = ""
		}
		ms = append(ms, ipv4.Message{Buffers: [][]byte{[]byte(p)}, Addr: rx[i%2].LocalAddr()})
		segs = append(segs, 1)
		want[i%2] = append(want[i%2], p)
	}
	if n, err := w.WriteBatch(ms, 0); n != batchSize || err != nil {
		t.Fatalf("one call sent %d, %v; want %d (a full call)", n, err, batchSize)
	}
	if sent, _ := d.write(ms[batchSize:], segs[batchSize:], 0, func(err error) bool { t.Error(err); return true }); sent != 3 {
		t.Fatalf("the rest: sent %d of 3", sent)
	}
	for i := range rx {
		got := readAll(t, rx[i], len(want[i]))
		if g, w := fmt.Sprintf("%q", got), fmt.Sprintf("%q", want[i]); g != w {
			t.Errorf("peer %d got %s, want %s", i, g, w)
		}
	}
}

// TestMmsgConnFamily: an IPv6 socket sends to an IPv4 peer by its
// v4-mapped address; an IPv4 socket refuses an IPv6 address as the first
// message (-1 and the error) and sends what came before it otherwise.
func TestMmsgConnFamily(t *testing.T) {
	tx6, err := mappedLoopback()
	if err != nil {
		t.Skipf("no dual-stack socket here: %v", err)
	}
	defer tx6.Close()
	rx, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	w6, err := newBatchWriter(tx6, true)
	if err != nil {
		t.Fatal(err)
	}
	to := rx.LocalAddr().(*net.UDPAddr)
	mapped := &net.UDPAddr{IP: to.IP.To16(), Port: to.Port}
	if n, err := w6.WriteBatch([]ipv4.Message{{Buffers: [][]byte{[]byte("six")}, Addr: mapped}}, 0); n != 1 || err != nil {
		t.Fatalf("IPv6 socket to a v4-mapped peer: %d, %v", n, err)
	}
	if got := readAll(t, rx, 1); string(got[0]) != "six" {
		t.Errorf("got %q", got[0])
	}

	tx4, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer tx4.Close()
	w4, err := newBatchWriter(tx4, false)
	if err != nil {
		t.Fatal(err)
	}
	v6 := &net.UDPAddr{IP: net.IPv6loopback, Port: 9}
	if n, err := w4.WriteBatch([]ipv4.Message{{Buffers: [][]byte{[]byte("x")}, Addr: v6}}, 0); n != -1 || !errors.Is(err, errAddrFamily) {
		t.Errorf("IPv6 address on an IPv4 socket: %d, %v; want -1, errAddrFamily", n, err)
	}
	ms := []ipv4.Message{{Buffers: [][]byte{[]byte("four")}, Addr: to}, {Buffers: [][]byte{[]byte("x")}, Addr: v6}}
	if n, err := w4.WriteBatch(ms, 0); n != 1 || err != nil {
		t.Errorf("a good message, then an IPv6 address: %d, %v; want 1, nil", n, err)
	}
	if got := readAll(t, rx, 1); string(got[0]) != "four" {
		t.Errorf("got %q", got[0])
	}
}

// TestMmsgConnClosed: a write on a closed socket reports net.ErrClosed (the
// relay reopens a flow on it).
func TestMmsgConnClosed(t *testing.T) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	w, err := newBatchWriter(c, false)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if n, err := w.WriteBatch([]ipv4.Message{{Buffers: [][]byte{[]byte("x")}, Addr: c.LocalAddr()}}, 0); n != -1 || !errors.Is(err, net.ErrClosed) {
		t.Errorf("closed socket: %d, %v; want -1, net.ErrClosed", n, err)
	}
}

func TestZoneIndex(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skipf("no lo: %v", err)
	}
	for zone, want := range map[string]uint32{"": 0, "7": 7, "lo": uint32(lo.Index), "no-such-if": 0} {
		if got := zoneIndex(zone); got != want {
			t.Errorf("zoneIndex(%q) = %d, want %d", zone, got, want)
		}
	}
}

// TestReadDatagrams: each datagram comes whole and in order, an empty one
// included, and the read ends with the deadline's error.
func TestReadDatagrams(t *testing.T) {
	rx, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx := udpClient(t, rx.LocalAddr().String())
	want := []string{"one", "", "three"}
	for _, p := range want {
		if _, err := tx.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	rc, err := rx.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	rx.SetReadDeadline(time.Now().Add(time.Second))
	err = ReadDatagrams(rc, func(b []byte) {
		got = append(got, string(b))
		if len(got) == len(want) {
			rx.SetReadDeadline(time.Now())
		}
	})
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("ended with %v, want the deadline", err)
	}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
