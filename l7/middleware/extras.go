package middleware

import (
	"net/http"

	"github.com/quic-go/quic-go/http3"
)

// The optional interfaces of a server's ResponseWriter that handlers
// assert on the writer they get, where http.ResponseController (through
// Unwrap) cannot help: http.CloseNotifier, http.Pusher, and quic-go's
// http3.HTTPStreamer (extended CONNECT over HTTP/3) with http3.Settingser.
// A wrapper must have them exactly when the writer below has them: a
// handler told that push, or a CloseNotify channel, exists where it does
// not would wait on a channel that never fires or believe it speaks
// HTTP/2. Go cannot add methods to a value, so each wrapper comes in one
// type per Kind, chosen as it wraps: the type embeds the wrapper (one
// allocation, as before) and one of the Extra types below, which hand the
// calls down.

// Kind is the set of those interfaces a ResponseWriter has.
type Kind uint8

const (
	// KindPlain has none: proxynow's HTTP/1 server.
	KindPlain Kind = iota
	// KindNotify has http.CloseNotifier: net/http's HTTP/1 server.
	KindNotify
	// KindH2 has http.CloseNotifier and http.Pusher: l7's HTTP/2 server
	// (as x/net's).
	KindH2
	// KindH3 has http3.HTTPStreamer and http3.Settingser: quic-go's HTTP/3.
	KindH3
)

type (
	h2Writer interface {
		http.CloseNotifier
		http.Pusher
	}
	h3Writer interface {
		http3.HTTPStreamer
		http3.Settingser
	}
)

// KindOf is w's Kind. A writer with another mix (a Pusher that cannot
// CloseNotify) is KindPlain: a wrapper then hides what it would not
// expose whole, as wrappers did before.
func KindOf(w http.ResponseWriter) Kind {
	switch w.(type) {
	case h2Writer:
		return KindH2
	case h3Writer:
		return KindH3
	case http.CloseNotifier: // without Pusher: that is the first case
		return KindNotify
	}
	return KindPlain
}

// NotifyExtra gives a KindNotify wrapper In's CloseNotify.
type NotifyExtra struct{ In http.ResponseWriter }

// CloseNotify is In's.
func (e NotifyExtra) CloseNotify() <-chan bool { return e.In.(http.CloseNotifier).CloseNotify() }

// H2Extra gives a KindH2 wrapper In's CloseNotify and Push. The HTTP/2
// server's Push returns http.ErrNotSupported (server push is not offered;
// current browsers and Go's client turn it off anyway).
type H2Extra struct{ In http.ResponseWriter }

// CloseNotify is In's.
func (e H2Extra) CloseNotify() <-chan bool { return e.In.(http.CloseNotifier).CloseNotify() }

// Push is In's.
func (e H2Extra) Push(target string, opts *http.PushOptions) error {
	return e.In.(http.Pusher).Push(target, opts)
}

// StreamTaker is a wrapper that must know when its handler takes the
// HTTP/3 stream over (http3.HTTPStreamer): quic-go's writer panics on a
// WriteHeader after that, and a wrapper that writes after the handler
// returned (an error page, a held header, a stall deadline) must not.
type StreamTaker interface {
	// TakeStream calls in.HTTPStream and, when it succeeds, writes
	// nothing more; it may refuse instead, with an error.
	TakeStream(in http3.HTTPStreamer) (*http3.Stream, error)
}

// H3Extra gives a KindH3 wrapper In's HTTPStream, through Owner when it
// is set, and In's settings.
type H3Extra struct {
	In    http.ResponseWriter
	Owner StreamTaker // nil: the wrapper has nothing to stop
}

// HTTPStream takes the stream from In, telling Owner.
func (e H3Extra) HTTPStream() (*http3.Stream, error) {
	in := e.In.(http3.HTTPStreamer)
	if e.Owner != nil {
		return e.Owner.TakeStream(in)
	}
	return in.HTTPStream()
}

// ReceivedSettings is In's.
func (e H3Extra) ReceivedSettings() <-chan struct{} {
	return e.In.(http3.Settingser).ReceivedSettings()
}

// Settings is In's.
func (e H3Extra) Settings() *http3.Settings { return e.In.(http3.Settingser).Settings() }

var (
	_ http.CloseNotifier = NotifyExtra{}
	_ h2Writer           = H2Extra{}
	_ h3Writer           = H3Extra{}
)
