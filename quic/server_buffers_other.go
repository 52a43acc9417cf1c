//go:build !linux

package quic

const (
	soRcvBufForce      = 0
	soSndBufForce      = 0
	bufferReportFactor = 1
)
