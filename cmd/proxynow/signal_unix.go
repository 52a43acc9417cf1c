//go:build unix

package main

import (
	"os"
	"syscall"
)

// reopenSignal asks a running proxynow to reopen its access log file after
// logrotate renamed it: SIGUSR1, as nginx (`nginx -s reopen`) and Traefik.
var reopenSignal os.Signal = syscall.SIGUSR1
