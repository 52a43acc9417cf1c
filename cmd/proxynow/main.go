// Command proxynow is a TCP/UDP (and, as it grows, TLS and HTTP) proxy
// configured by HCL files.
//
//	proxynow run [-config FILE]...   serve until SIGINT/SIGTERM; SIGHUP reloads
//	proxynow validate FILE...         check configuration files, bind nothing
//	proxynow version                  print the version
//
// Exit codes: 0 clean shutdown or valid configuration; 1 runtime failure; 2
// invalid configuration or usage.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

// Exit codes.
const (
	exitOK      = 0
	exitRuntime = 1
	exitConfig  = 2
)

func main() {
	// Heap-profile sampling takes a stack trace every 512 KiB allocated:
	// about 1% of a proxied request's CPU, for profiles only admin
	// { pprof = true } serves; that turns it back on (server.Admin).
	// GODEBUG=memprofilerate=N still has the last word.
	if !strings.Contains(os.Getenv("GODEBUG"), "memprofilerate") {
		runtime.MemProfileRate = 0
	}
	installLegoLogger()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, nil))
}

const usage = `proxynow: one proxy for TCP, UDP, TLS and HTTP, configured in HCL

Usage:
  proxynow run [-config FILE]...   run with the given configuration files or
                                   directories (default proxynow.hcl)
  proxynow validate FILE...        check configuration files and exit
  proxynow version                 print the version

Run "proxynow COMMAND -help" for a command's flags.
`

// run is main without the process: args excludes the program name. stop,
// when non-nil, replaces the signal channel (tests).
func run(args []string, stdout, stderr io.Writer, stop <-chan os.Signal) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitConfig
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stderr, stop)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "version":
		return cmdVersion(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "proxynow: unknown command %q\n\n%s", args[0], usage)
		return exitConfig
	}
}
