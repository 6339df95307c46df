package cluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/broker"
)

// Queue links: one long-lived TCP connection per pair of nodes, on the
// inter-node port (first byte streamLink), carries the queue traffic of
// both nodes to each other: a node whose client publishes to, consumes
// from or settles with a queue whose home is the other node sends
// requests, and the home answers and delivers (linkproto.go has the
// frames). Frames are appended to a buffer that one writer goroutine
// per link drains, writing whatever accumulated with one syscall, as a
// client connection's writer does; one reader goroutine per link decodes
// and handles frames in order. Neither blocks on the other side's
// queues: a publisher that finds too much unsent waits (WaitRoom), and
// deliveries are bounded by the credit the consuming node grants.
//
// The node that first needs a link dials it; the other registers the
// link it accepted. When a link breaks, each side cleans up its part:
// the home requeues the deliveries it made over it and drops the
// consumers it served over it; the consuming node cancels those
// consumers (basic.cancel to clients) and fails its pending requests. A
// later request dials again.

// Link settings.
const (
	// linkDialTimeout bounds a dial and the hello exchange.
	linkDialTimeout = 2 * time.Second
	// linkWriteTimeout bounds one write: a peer that reads nothing for
	// that long loses the link.
	linkWriteTimeout = 30 * time.Second
	// linkCallTimeout bounds a request that waits for its reply.
	linkCallTimeout = 10 * time.Second
	// linkMaxUnsent is how many bytes may wait to be written before
	// publishers wait (WaitRoom).
	linkMaxUnsent = 8 << 20
	// linkReadBuffer is the reader's buffer.
	linkReadBuffer = 64 << 10
	// linkKeptBuffer bounds the write buffer a link keeps between bursts.
	linkKeptBuffer = 1 << 20
	// linkRedialDelay is how long after a failed dial requests to that
	// node fail at once instead of dialing again (a node that the gossip
	// has not yet seen fail would otherwise cost every publish a dial
	// timeout).
	linkRedialDelay = 500 * time.Millisecond
)

// errLinkDown fails requests of a link that closed, or to a node that
// cannot be reached.
var errLinkDown = errors.New("queue link down")

// links are this node's queue links, by peer node name.
type links struct {
	self string
	log  *slog.Logger
	// addr returns a running member's inter-node address (false: the node
	// is not running, as the gossip sees it).
	addr func(node string) (string, bool)
	srv  atomic.Pointer[broker.Server] // the home side (Node.Serve)

	mu      sync.Mutex
	conns   map[string]*link
	dialing map[string]chan struct{} // closed when the dial ends
	failed  map[string]time.Time     // when a dial to the node last failed
	all     map[*link]struct{}       // every open link, accepted duplicates too
	closed  bool
	wg      sync.WaitGroup
}

func newLinks(self string, log *slog.Logger, addr func(string) (string, bool)) *links {
	return &links{self: self, log: log, addr: addr, conns: map[string]*link{},
		dialing: map[string]chan struct{}{}, failed: map[string]time.Time{}, all: map[*link]struct{}{}}
}

// get returns the link to node, dialing it if there is none.
func (ls *links) get(node string) (*link, error) {
	for range 3 { // a dial in progress ends, then one more look
		ls.mu.Lock()
		if ls.closed {
			ls.mu.Unlock()
			return nil, errLinkDown
		}
		if l := ls.conns[node]; l != nil && !l.isClosed() {
			ls.mu.Unlock()
			return l, nil
		}
		if wait := ls.dialing[node]; wait != nil {
			ls.mu.Unlock()
			<-wait
			continue
		}
		if at, ok := ls.failed[node]; ok && time.Since(at) < linkRedialDelay {
			ls.mu.Unlock()
			return nil, fmt.Errorf("%w: %s unreachable moments ago", errLinkDown, node)
		}
		wait := make(chan struct{})
		ls.dialing[node] = wait
		ls.mu.Unlock()
		l, err := ls.dial(node)
		ls.mu.Lock()
		delete(ls.dialing, node)
		close(wait)
		if err != nil {
			ls.failed[node] = time.Now()
			ls.mu.Unlock()
			return nil, err
		}
		delete(ls.failed, node)
		if ls.closed {
			ls.mu.Unlock()
			l.close(errLinkDown)
			return nil, errLinkDown
		}
		ls.conns[node] = l
		ls.startLocked(l)
		ls.mu.Unlock()
		return l, nil
	}
	return nil, fmt.Errorf("%w: no link to %s", errLinkDown, node)
}

// current returns the open link to node, or nil, without dialing.
func (ls *links) current(node string) *link {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if l := ls.conns[node]; l != nil && !l.isClosed() {
		return l
	}
	return nil
}

// dial connects to node and exchanges hellos.
func (ls *links) dial(node string) (*link, error) {
	addr, ok := ls.addr(node)
	if !ok {
		return nil, fmt.Errorf("%w: node %s is not running", errLinkDown, node)
	}
	nc, err := dialStream(addr, linkDialTimeout, streamLink)
	if err != nil {
		return nil, fmt.Errorf("%w: dial %s at %s: %v", errLinkDown, node, addr, err)
	}
	nc.SetDeadline(time.Now().Add(linkDialTimeout))
	r := bufio.NewReaderSize(nc, linkReadBuffer)
	peer, err := ls.hello(nc, r)
	if err == nil && peer != node {
		err = fmt.Errorf("%s answers as %s", addr, peer)
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%w: %v", errLinkDown, err)
	}
	nc.SetDeadline(time.Time{})
	return newLink(ls, peer, nc, r), nil
}

// accept serves a link another node dialed, until it closes.
func (ls *links) accept(nc net.Conn) {
	nc.SetDeadline(time.Now().Add(linkDialTimeout))
	r := bufio.NewReaderSize(nc, linkReadBuffer)
	peer, err := ls.hello(nc, r)
	if err != nil {
		ls.log.Debug("queue link refused", "remote", nc.RemoteAddr().String(), "err", err)
		nc.Close()
		return
	}
	nc.SetDeadline(time.Time{})
	l := newLink(ls, peer, nc, r)
	ls.mu.Lock()
	if ls.closed {
		ls.mu.Unlock()
		l.close(errLinkDown)
		return
	}
	if cur := ls.conns[peer]; cur == nil || cur.isClosed() {
		ls.conns[peer] = l
	}
	ls.startLocked(l)
	ls.mu.Unlock()
}

// hello sends this node's name and reads the peer's.
func (ls *links) hello(nc net.Conn, r *bufio.Reader) (string, error) {
	if err := writeFrame(nc, appendString([]byte{frameHello}, ls.self)); err != nil {
		return "", fmt.Errorf("send hello: %w", err)
	}
	body, err := readFrame(r)
	if err != nil {
		return "", fmt.Errorf("read hello: %w", err)
	}
	fr := frameReader{b: body}
	if fr.byte() != frameHello {
		return "", errors.New("the first frame is not a hello")
	}
	name := fr.string()
	if err := fr.done(); err != nil || name == "" {
		return "", errors.New("malformed hello")
	}
	return name, nil
}

// startLocked starts a link's goroutines; under ls.mu.
func (ls *links) startLocked(l *link) {
	ls.all[l] = struct{}{}
	ls.wg.Add(2)
	go func() {
		defer ls.wg.Done()
		l.writeLoop()
	}()
	go func() {
		defer ls.wg.Done()
		l.readLoop()
		ls.mu.Lock()
		delete(ls.all, l)
		if ls.conns[l.peer] == l {
			delete(ls.conns, l.peer)
		}
		ls.mu.Unlock()
	}()
}

// peerDown closes the links to a node the gossip lost: a link over a
// partition may not notice for a long time.
func (ls *links) peerDown(node string) {
	ls.mu.Lock()
	var down []*link
	for l := range ls.all {
		if l.peer == node {
			down = append(down, l)
		}
	}
	ls.mu.Unlock()
	for _, l := range down {
		l.close(fmt.Errorf("%w: node %s is down", errLinkDown, node))
	}
}

// close closes every link and waits for their goroutines.
func (ls *links) close() {
	ls.mu.Lock()
	ls.closed = true
	all := make([]*link, 0, len(ls.all))
	for l := range ls.all {
		all = append(all, l)
	}
	ls.mu.Unlock()
	for _, l := range all {
		l.close(errLinkDown)
	}
	ls.wg.Wait()
}

// link is one queue link. Each side plays both parts: the client part
// (requests, consumers of the peer's queues: remotequeue.go) and the home
// part (serving this node's queues: home.go).
type link struct {
	ls   *links
	peer string
	nc   net.Conn
	r    *bufio.Reader

	wmu    sync.Mutex
	wbuf   []byte // frames not yet handed to the writer
	spare  []byte // the writer's last buffer, for reuse
	unsent atomic.Int64
	room   *sync.Cond // on wmu: signalled as the writer drains and at close
	wake   chan struct{}
	closed bool
	done   chan struct{}
	err    error // why it closed; under wmu

	client clientSide
	home   homeSide
}

func newLink(ls *links, peer string, nc net.Conn, r *bufio.Reader) *link {
	l := &link{ls: ls, peer: peer, nc: nc, r: r, wake: make(chan struct{}, 1), done: make(chan struct{})}
	l.room = sync.NewCond(&l.wmu)
	l.client.init()
	l.home.init()
	return l
}

func (l *link) isClosed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// send appends one frame, whose body fn appends, for the writer. It
// reports false when the link is closed (nothing is sent). fn runs under
// the write lock: it must only encode.
func (l *link) send(fn func(b []byte) []byte) bool {
	start, ok := l.begin()
	if !ok {
		return false
	}
	l.wbuf = fn(l.wbuf)
	return l.end(start)
}

// begin starts a frame under the write lock, which end releases: the
// caller appends the frame's body to l.wbuf in between. It reports false,
// with the lock released, when the link is closed.
func (l *link) begin() (int, bool) {
	l.wmu.Lock()
	if l.closed {
		l.wmu.Unlock()
		return 0, false
	}
	start := len(l.wbuf)
	l.wbuf = append(l.wbuf, 0, 0, 0, 0)
	return start, true
}

// end finishes the frame begin started at start and wakes the writer.
func (l *link) end(start int) bool {
	size := len(l.wbuf) - start - 4
	if size > maxFrame {
		l.wbuf = l.wbuf[:start]
		l.wmu.Unlock()
		l.ls.log.Error("queue link frame too large, not sent", "peer", l.peer, "bytes", size)
		return false
	}
	binary.BigEndian.PutUint32(l.wbuf[start:], uint32(size))
	l.unsent.Add(int64(size + 4))
	l.wmu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return true
}

// waitRoom blocks while more than linkMaxUnsent bytes wait to be written
// (the write deadline bounds it: a stuck link closes).
func (l *link) waitRoom() {
	if l.unsent.Load() <= linkMaxUnsent {
		return
	}
	l.wmu.Lock()
	for !l.closed && l.unsent.Load() > linkMaxUnsent {
		l.room.Wait()
	}
	l.wmu.Unlock()
}

// writeLoop writes what send appended, a burst at a time.
func (l *link) writeLoop() {
	for {
		select {
		case <-l.wake:
		case <-l.done:
			return
		}
		for {
			l.wmu.Lock()
			buf := l.wbuf
			l.wbuf, l.spare = l.spare[:0], nil
			l.wmu.Unlock()
			if len(buf) == 0 {
				l.wmu.Lock()
				l.spare = buf
				l.wmu.Unlock()
				break
			}
			l.nc.SetWriteDeadline(time.Now().Add(linkWriteTimeout))
			_, err := l.nc.Write(buf)
			l.unsent.Add(-int64(len(buf)))
			if cap(buf) > linkKeptBuffer {
				buf = nil
			}
			l.wmu.Lock()
			l.spare = buf[:0]
			l.room.Broadcast()
			l.wmu.Unlock()
			if err != nil {
				l.close(fmt.Errorf("%w: write to %s: %v", errLinkDown, l.peer, err))
				return
			}
		}
	}
}

// readLoop handles frames until the link breaks, then cleans up.
func (l *link) readLoop() {
	var body []byte
	for {
		var err error
		body, err = readFrameInto(l.r, body)
		if err == nil {
			err = l.handle(body)
		}
		if err != nil {
			l.close(fmt.Errorf("%w: %s: %v", errLinkDown, l.peer, err))
			break
		}
		if cap(body) > linkKeptBuffer {
			body = nil
		}
	}
	l.client.lost(l)
	l.home.lost(l)
}

// handle runs one frame.
func (l *link) handle(body []byte) error {
	if len(body) == 0 {
		return errMalformed
	}
	fr := &frameReader{b: body[1:]}
	switch body[0] {
	case frameReply:
		return l.client.onReply(fr)
	case frameDeliver:
		return l.client.onDeliver(l, fr)
	case frameCancelled:
		return l.client.onCancelled(fr)
	case framePublish:
		return l.home.onPublish(l, fr)
	case frameConsume:
		return l.home.onConsume(l, fr)
	case frameCancel:
		return l.home.onCancel(fr)
	case frameCredit:
		return l.home.onCredit(fr)
	case frameSettle:
		return l.home.onSettle(fr)
	case frameGet:
		return l.home.onGet(l, fr)
	case framePurge:
		return l.home.onPurge(l, fr)
	case frameInfo:
		return l.home.onInfo(l, fr)
	}
	return fmt.Errorf("unknown queue link frame %d", body[0])
}

// close closes the link; the reader then cleans up. It is idempotent.
func (l *link) close(why error) {
	l.wmu.Lock()
	if l.closed {
		l.wmu.Unlock()
		return
	}
	l.closed = true
	l.err = why
	l.wbuf = nil
	l.room.Broadcast()
	l.wmu.Unlock()
	close(l.done)
	l.nc.Close()
	l.ls.log.Debug("queue link closed", "peer", l.peer, "why", why)
}

// reply sends the answer to request id: status ok and the payload fn
// appends (fn may be nil), or err.
func (l *link) reply(id uint64, err error, fn func(b []byte) []byte) {
	l.send(func(b []byte) []byte {
		b = appendUvarint(append(b, frameReply), id)
		if err != nil {
			return appendLinkError(b, err)
		}
		b = append(b, linkOK)
		if fn != nil {
			b = fn(b)
		}
		return b
	})
}

// call sends a request (fn appends its body after the kind and the id)
// and calls onReply once with its answer, or with errLinkDown when the
// link closes first. onReply runs on the link's reader goroutine.
func (l *link) call(kind byte, fn func(b []byte) []byte, onReply func(fr *frameReader, err error)) {
	id := l.client.register(onReply)
	ok := l.send(func(b []byte) []byte {
		return fn(appendUvarint(append(b, kind), id))
	})
	if !ok {
		if h := l.client.unregister(id); h != nil {
			h(nil, errLinkDown)
		}
	}
}

// callWait sends a request and waits for its answer: decode reads the
// payload of a successful reply (on the reader goroutine). A reply that
// comes after the wait ended is not decoded; late, if set, gets it then
// (to undo what the request did at the other end).
func (l *link) callWait(ctx context.Context, kind byte, fn func(b []byte) []byte, decode func(fr *frameReader) error, late func(fr *frameReader)) error {
	ctx, cancel := context.WithTimeout(ctx, linkCallTimeout)
	defer cancel()
	var mu sync.Mutex
	abandoned := false
	done := make(chan error, 1)
	l.call(kind, fn, func(fr *frameReader, err error) {
		mu.Lock()
		defer mu.Unlock()
		if abandoned {
			if err == nil && late != nil {
				late(fr)
			}
			return
		}
		if err == nil {
			err = decode(fr)
		}
		done <- err
	})
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	mu.Lock()
	defer mu.Unlock()
	select {
	case err := <-done: // answered meanwhile
		return err
	default:
	}
	abandoned = true
	return fmt.Errorf("%w: no answer from %s: %v", errLinkDown, l.peer, ctx.Err())
}

// readFrameInto reads one frame into buf's storage when it is large enough.
func readFrameInto(r io.Reader, buf []byte) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(hdr[:])
	if size > maxFrame {
		return nil, fmt.Errorf("queue link frame of %d bytes exceeds %d", size, maxFrame)
	}
	if uint32(cap(buf)) < size {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	return buf, nil
}
