//go:build !linux

package server

import "net"

// listenConfig is the ListenConfig of an entrypoint's socket: net sets the
// TCP keep-alive toward clients on each accepted connection.
func listenConfig() net.ListenConfig {
	return net.ListenConfig{KeepAliveConfig: clientKeepAlive}
}
