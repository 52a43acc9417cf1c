package quic

import (
	"log/slog"
	"net"
	"os"
	"syscall"
)

// wantBuffer is the socket buffer size quic-go asks for (7 MiB): below it,
// a burst of packets at high bandwidth overflows the receive queue.
const wantBuffer = 7 << 20

// quicGoBufferWarning is the variable that silences quic-go's own buffer
// warning, which goes to the standard logger, unstructured; checkBuffers
// says the same once through slog, with the sysctl to run.
const quicGoBufferWarning = "QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING"

// checkBuffers raises pc's receive and send buffers to what quic-go wants
// and logs one warning when the kernel caps them, naming the sysctls that
// lift the caps. quic-go then finds the buffers as large as they can be.
func checkBuffers(pc net.PacketConn, log *slog.Logger) {
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		return // a demultiplexer's side: the socket is sized by its owner
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return
	}
	_ = uc.SetReadBuffer(wantBuffer)
	_ = uc.SetWriteBuffer(wantBuffer)
	warnSmallBuffers(log, raiseBuffer(rc, syscall.SO_RCVBUF, soRcvBufForce), raiseBuffer(rc, syscall.SO_SNDBUF, soSndBufForce))
}

// warnSmallBuffers logs the one warning about buffers (sizes in bytes)
// below wantBuffer and silences quic-go's own.
func warnSmallBuffers(log *slog.Logger, rcv, snd int) {
	if rcv >= wantBuffer && snd >= wantBuffer {
		return
	}
	if os.Getenv(quicGoBufferWarning) == "" {
		_ = os.Setenv(quicGoBufferWarning, "true")
	}
	log.Warn("UDP socket buffers are smaller than QUIC needs for high bandwidth; raise the kernel caps with "+
		"`sysctl -w net.core.rmem_max=7340032 net.core.wmem_max=7340032`",
		"receive_kib", rcv/1024, "send_kib", snd/1024, "want_kib", wantBuffer/1024)
}

// raiseBuffer returns the buffer size, after trying the privileged
// SO_*BUFFORCE when the plain request was capped (it works as root or
// with CAP_NET_ADMIN). Linux reports twice the size requested, to count
// its bookkeeping; the caps apply to the requested size.
func raiseBuffer(rc syscall.RawConn, opt, force int) int {
	get := func() int {
		var n int
		_ = rc.Control(func(fd uintptr) { n, _ = syscall.GetsockoptInt(sysfd(fd), syscall.SOL_SOCKET, opt) })
		return n / bufferReportFactor
	}
	n := get()
	if n < wantBuffer && force != 0 {
		_ = rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(sysfd(fd), syscall.SOL_SOCKET, force, wantBuffer) })
		n = get()
	}
	return n
}
