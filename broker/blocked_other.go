//go:build !linux

package broker

import "net"

// peerGone never reports a peer gone outside Linux: a blocked client that
// goes away is noticed when the writer fails (heartbeats).
func peerGone(net.Conn) (bool, error) { return false, nil }
