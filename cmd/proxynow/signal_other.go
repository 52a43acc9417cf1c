//go:build !unix

package main

import "os"

// reopenSignal is nil where SIGUSR1 does not exist (Windows): a reload
// (POST /reload, or a watched file's change) reopens the access log there.
var reopenSignal os.Signal
