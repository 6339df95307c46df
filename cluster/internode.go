package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// The inter-node port carries raft and Warren's own requests over one TCP
// listener. The dialer's first byte says which a connection is for.
const (
	streamRaft   byte = 'R' // hashicorp/raft's NetworkTransport
	streamWarren byte = 'W' // Warren's requests (rpc.go)
	streamLink   byte = 'L' // a queue link (link.go)
)

// headerTimeout bounds the wait for a new connection's first byte.
const headerTimeout = 5 * time.Second

// interNode is the inter-node listener: it accepts connections, reads
// their first byte and hands raft's to raftLayer.Accept, Warren's
// requests to handle and queue links to link, each on its own goroutine.
type interNode struct {
	ln     net.Listener
	handle func(net.Conn)
	link   func(net.Conn) // returns once the link is running (or refused)
	log    *slog.Logger

	raftConns chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once

	mu    sync.Mutex
	conns map[net.Conn]struct{} // Warren's open connections, closed with the listener
	wg    sync.WaitGroup
}

func newInterNode(ln net.Listener, log *slog.Logger) *interNode {
	return &interNode{ln: ln, log: log, raftConns: make(chan net.Conn), closed: make(chan struct{}), conns: map[net.Conn]struct{}{}}
}

// serve accepts connections until close; handle must be set before.
func (m *interNode) serve() {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for {
			c, err := m.ln.Accept()
			if err != nil {
				select {
				case <-m.closed:
					return
				default:
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				m.log.Error("inter-node listener failed", "err", err)
				return
			}
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				m.dispatch(c)
			}()
		}
	}()
}

// dispatch reads a connection's first byte and passes it on.
func (m *interNode) dispatch(c net.Conn) {
	var b [1]byte
	c.SetReadDeadline(time.Now().Add(headerTimeout))
	if _, err := c.Read(b[:]); err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	switch b[0] {
	case streamRaft:
		select {
		case m.raftConns <- c:
		case <-m.closed:
			c.Close()
		}
	case streamLink:
		m.link(c)
	case streamWarren:
		m.mu.Lock()
		select {
		case <-m.closed:
			m.mu.Unlock()
			c.Close()
			return
		default:
		}
		m.conns[c] = struct{}{}
		m.mu.Unlock()
		m.handle(c)
		c.Close()
		m.mu.Lock()
		delete(m.conns, c)
		m.mu.Unlock()
	default:
		m.log.Warn("inter-node connection with an unknown header, closed", "remote", c.RemoteAddr().String(), "header", b[0])
		c.Close()
	}
}

// close stops the listener and Warren's connections and waits for their
// goroutines. Raft's connections are closed by raft's transport.
func (m *interNode) close() {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		close(m.closed)
		for c := range m.conns {
			c.Close()
		}
		m.mu.Unlock()
		m.ln.Close()
	})
	m.wg.Wait()
}

// raftLayer is the raft.StreamLayer over the inter-node listener.
type raftLayer struct {
	m         *interNode
	advertise net.Addr
	closed    chan struct{}
	closeOnce sync.Once
}

var _ raft.StreamLayer = (*raftLayer)(nil)

// Accept implements net.Listener.
func (l *raftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.m.raftConns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	case <-l.m.closed:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener; the listener itself closes with the node.
func (l *raftLayer) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

// Addr implements net.Listener: the address the other nodes dial.
func (l *raftLayer) Addr() net.Addr { return l.advertise }

// Dial implements raft.StreamLayer.
func (l *raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return dialStream(string(address), timeout, streamRaft)
}

// dialStream connects to a node's inter-node port for kind of traffic.
func dialStream(addr string, timeout time.Duration, kind byte) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte{kind}); err != nil {
		c.Close()
		return nil, fmt.Errorf("inter-node header to %s: %w", addr, err)
	}
	c.SetWriteDeadline(time.Time{})
	return c, nil
}
