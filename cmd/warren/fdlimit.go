package main

import (
	"fmt"
	"syscall"
)

// fdReserve is how many descriptors the automatic connection limit leaves
// for everything but AMQP connections (the store's files, the management
// listener and its clients, logs), at least; a tenth of the limit when
// that is more.
const fdReserve = 100

// raiseFDLimit raises the soft limit on open files to the hard limit, as
// many servers do at start, and returns the soft limit in force.
// (Go's runtime raises it too since Go 1.19; doing it here keeps the
// behaviour whatever the toolchain, and gives the figure for the log.)
func raiseFDLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("read the open files limit: %w", err)
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			return lim.Cur, fmt.Errorf("raise the open files limit from %d to %d: %w", lim.Cur, lim.Max, err)
		}
		lim = raised
	}
	return lim.Cur, nil
}

// autoMaxConnections is the connection limit for a soft limit of fds open
// files: what is left after the reserve, so that connections are refused
// cleanly before accept and the store run out of descriptors. 0 (no
// limit) when the limit is unknown or practically unbounded.
func autoMaxConnections(fds uint64) int {
	if fds == 0 || fds >= 1<<30 {
		return 0
	}
	reserve := max(uint64(fdReserve), fds/10)
	if fds <= 2*reserve {
		return max(int(fds/2), 1)
	}
	return int(fds - reserve)
}
