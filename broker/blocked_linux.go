package broker

import (
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// tcpEstablished is TCP_ESTABLISHED of Linux's tcp_states.h, the state
// TCP_INFO reports for an open connection.
const tcpEstablished = 1

// peerGone reports whether the peer of a TCP connection has closed or
// reset it, from the socket's state (TCP_INFO), without reading: data
// the peer sent before closing may still wait unread. Connections other
// than TCP are never reported gone.
func peerGone(nc net.Conn) (bool, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true, fmt.Errorf("socket: %w", err)
	}
	var state uint8
	var serr error
	if err := rc.Control(func(fd uintptr) {
		var info *unix.TCPInfo
		if info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); serr == nil {
			state = info.State
		}
	}); err != nil {
		return true, fmt.Errorf("socket: %w", err) // closed already
	}
	if serr != nil {
		return false, nil // not TCP after all, or no TCP_INFO: heartbeats will tell
	}
	if state != tcpEstablished {
		return true, fmt.Errorf("tcp state %d", state)
	}
	return false, nil
}
