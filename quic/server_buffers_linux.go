package quic

import "syscall"

const (
	soRcvBufForce      = syscall.SO_RCVBUFFORCE
	soSndBufForce      = syscall.SO_SNDBUFFORCE
	bufferReportFactor = 2
)
