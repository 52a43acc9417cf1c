package server

import (
	"context"

	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/upstream/accesslog"
)

// openAccessLog opens the Writer of al (nil: none) on the process's line
// counters, so proxynow_accesslog_lines_total keeps counting across
// reloads. follows is the Writer it replaces, nil at start.
func (s *Server) openAccessLog(al *config.AccessLog, follows *accesslog.Writer) (*accesslog.Writer, error) {
	if al == nil {
		return nil, nil
	}
	format, err := accesslog.ParseFormat(al.Format)
	if err != nil {
		return nil, err
	}
	// Open's error names the path ("access log: open /x/a.log: ...").
	return accesslog.Open(al.Path, accesslog.Options{
		Format:  format,
		Queue:   al.Buffer,
		OnWrite: s.metrics.AccessLogLines.WithLabelValues("written").Inc,
		OnDrop:  s.metrics.AccessLogLines.WithLabelValues("dropped").Inc,
		Follows: follows,
	})
}

// accessLogChange is a reload's access log step, in three parts as the
// reload's: prepare opens the new Writer while the reload may still fail
// (then abort closes it and removes a file it created), commit swaps it in with the generation, and
// finish, after the reload's lock is released, closes the old one. A
// reload that leaves log.access unchanged keeps the Writer and finish
// reopens its file instead, for logrotate's `postrotate kill -HUP`.
type accessLogChange struct {
	s             *Server
	changed       bool
	before, after *config.AccessLog
	next, old     *accesslog.Writer
}

// prepareAccessLog opens the Writer of after when it differs from before.
// An error (the path cannot be opened) fails the reload; the old Writer
// stays in use.
func (s *Server) prepareAccessLog(before, after *config.AccessLog) (*accessLogChange, error) {
	c := &accessLogChange{s: s, before: before, after: after}
	if sameJSON(before, after) {
		return c, nil
	}
	next, err := s.openAccessLog(after, s.accessLog.Load())
	if err != nil {
		return nil, err
	}
	c.changed, c.next = true, next
	return c, nil
}

// abort closes the Writer prepare opened; nothing was logged to it. A
// file prepare created is removed: the failed reload leaves nothing.
func (c *accessLogChange) abort() {
	if c.next != nil {
		_ = c.next.Discard(context.Background())
	}
}

// commit makes the new Writer the one lines go to.
func (c *accessLogChange) commit() {
	if c.changed {
		c.old = c.s.accessLog.Swap(c.next)
	}
}

// finish closes the replaced Writer: its queued lines are written (the
// new Writer writes nothing before, see accesslog.Options.Follows) and its
// file is closed. Unchanged, it reopens the file.
func (c *accessLogChange) finish() {
	s := c.s
	if !c.changed {
		s.reopenAfterReload()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), reopenTimeout)
	defer cancel()
	if err := c.old.Close(ctx); err != nil {
		s.log.Error("access log: the replaced log's sink is stuck; its queued lines were lost",
			"path", accessPath(c.before), "error", err)
	}
	switch {
	case c.after == nil:
		s.log.Info("access log stopped", "path", accessPath(c.before))
	case c.before == nil:
		s.log.Info("access log started", "path", accessPath(c.after), "format", c.after.Format)
	default:
		s.log.Info("access log changed", "path", accessPath(c.after), "format", c.after.Format,
			"buffer", c.after.Buffer, "previous_path", accessPath(c.before))
	}
}

func accessPath(al *config.AccessLog) string {
	if al == nil {
		return ""
	}
	return al.Path
}
