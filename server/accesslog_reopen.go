package server

import (
	"context"
	"errors"
	"time"

	"github.com/proxynow/proxynow/upstream/accesslog"
)

// The results of proxynow_accesslog_reopens_total.
const (
	reopenOK    = "ok"
	reopenError = "error"
)

// reopenTimeout bounds how long a reload waits for the access log's writer
// to reopen its file, or for a replaced one to write its queue and close:
// only a sink stuck in a write makes it wait.
const reopenTimeout = 5 * time.Second

// ReopenAccessLog reopens the access log file at its configured path, for
// log rotation (logrotate renames the file, then sends SIGUSR1 or SIGHUP).
// Lines keep being queued meanwhile. A failure is logged at error level
// and counted, and the log keeps going to the old file. Without an access
// log, or with one on standard output, it does nothing and returns nil.
// trigger names the cause in the log ("SIGUSR1", "reload").
func (s *Server) ReopenAccessLog(ctx context.Context, trigger string) error {
	w := s.accessLog.Load()
	if w.Path() == "" {
		return nil
	}
	if err := w.Reopen(ctx); err != nil {
		if errors.Is(err, accesslog.ErrClosed) && s.accessLog.Load() != w {
			return nil // a reload replaced the log, whose file is fresh
		}
		s.metrics.AccessLogReopens.WithLabelValues(reopenError).Inc()
		s.log.Error("access log: reopen failed, still writing to the old file",
			"trigger", trigger, "path", w.Path(), "error", err)
		return err
	}
	s.metrics.AccessLogReopens.WithLabelValues(reopenOK).Inc()
	s.log.Info("access log reopened", "trigger", trigger, "path", w.Path())
	return nil
}

// reopenAfterReload reopens the access log after a successful reload, so
// that logrotate's common `postrotate kill -HUP` works too. Its error is
// logged and counted by ReopenAccessLog; the reload itself succeeded.
func (s *Server) reopenAfterReload() {
	ctx, cancel := context.WithTimeout(context.Background(), reopenTimeout)
	defer cancel()
	_ = s.ReopenAccessLog(ctx, "reload")
}
