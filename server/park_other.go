//go:build !linux

package server

import (
	"errors"
	"fmt"
)

// newEpollWaiter: there is no epoll here; every parked connection waits in
// a goroutine of its own (goWaiter).
func newEpollWaiter() (parkWaiter, error) {
	return nil, fmt.Errorf("parking idle connections in one waiter: %w", errors.ErrUnsupported)
}
