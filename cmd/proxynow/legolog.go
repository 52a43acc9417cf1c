package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"

	legolog "github.com/go-acme/lego/v4/log"
)

// acmeLog is where lego's lines go: the running configuration's logger.
// lego logs through one package-level variable (legolog.Logger), so the
// process, not a Server, owns this bridge; main installs it once.
var acmeLog atomic.Pointer[slog.Logger]

// legoLogger turns lego's "[INFO] ..." / "[WARN] ..." lines into structured
// records (component=acme) on acmeLog instead of plain text on stderr.
// lego's informational chatter is Debug; its warnings stay warnings.
type legoLogger struct{}

var _ legolog.StdLogger = legoLogger{}

func installLegoLogger() { legolog.Logger = legoLogger{} }

func (legoLogger) emit(msg string) {
	l := acmeLog.Load()
	if l == nil {
		return
	}
	level := slog.LevelDebug
	msg = strings.TrimSpace(msg)
	switch {
	case strings.HasPrefix(msg, "[INFO] "):
		msg = msg[len("[INFO] "):]
	case strings.HasPrefix(msg, "[WARN] "):
		msg, level = msg[len("[WARN] "):], slog.LevelWarn
	}
	l.Log(context.Background(), level, msg, "component", "acme")
}

func (g legoLogger) Print(args ...any)                 { g.emit(fmt.Sprint(args...)) }
func (g legoLogger) Println(args ...any)               { g.emit(fmt.Sprintln(args...)) }
func (g legoLogger) Printf(format string, args ...any) { g.emit(fmt.Sprintf(format, args...)) }

// lego calls Fatal only from its own command line; should it ever, the
// process stops as lego expects, with the reason logged.
func (g legoLogger) Fatal(args ...any)                 { g.fatal(fmt.Sprint(args...)) }
func (g legoLogger) Fatalln(args ...any)               { g.fatal(fmt.Sprintln(args...)) }
func (g legoLogger) Fatalf(format string, args ...any) { g.fatal(fmt.Sprintf(format, args...)) }

func (legoLogger) fatal(msg string) {
	if l := acmeLog.Load(); l != nil {
		l.Error(strings.TrimSpace(msg), "component", "acme")
	} else {
		fmt.Fprintln(os.Stderr, "proxynow: acme:", msg)
	}
	os.Exit(exitRuntime)
}
