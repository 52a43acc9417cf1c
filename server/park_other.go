//go:build !linux

package server

import (
	"errors"
	"fmt"
	"log/slog"
)

// newEpollWaiter: there is no epoll here; every parked connection waits in
// a goroutine of its own (goWaiter).
func newEpollWaiter(*slog.Logger, parkWaiter) (parkWaiter, error) {
	return nil, fmt.Errorf("parking idle connections in one waiter: %w", errors.ErrUnsupported)
}
