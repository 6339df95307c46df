package broker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/broker/meta"
	"github.com/warrenmq/warren/exchange"
)

// Server is a running broker: its listeners, connections, vhosts and users.
type Server struct {
	cfg   Config
	log   *slog.Logger
	store Store
	users *Users
	// meta is the metadata log: every change of vhosts, users,
	// permissions, policies, shared queues, exchanges and bindings.
	meta meta.Log
	// restoring is set while the metadata log replays at start: queues
	// then take their stored messages.
	restoring bool

	ids  msgIDs    // message ids (msgid.go)
	gens queueGens // queue generations (queuegen.go)
	// memoryPressure is set while memory use is past the paging ratio of
	// the high watermark (always with a ratio of 0): transient messages
	// past a queue's bound then page out.
	memoryPressure     atomic.Bool
	pageKick           chan struct{} // asks the background pager for a pass (mempager.go)
	pagedUnderPressure atomic.Uint64
	nextConn           atomic.Uint64
	refusedConns       atomic.Uint64 // connections refused for the connection limit (accept.go)

	mu        sync.Mutex
	vhosts    map[string]*Vhost
	conns     map[*conn]struct{}
	listeners []net.Listener
	closing   bool
	wg        sync.WaitGroup // connection goroutines

	alarms  alarms
	disk    diskState     // the store's disk (diskspace.go)
	stop    chan struct{} // closed by Close
	replyTo replyToRegistry
	routers sync.Pool // *exchange.Router for routing off the reader goroutines
	// entryBatches holds *[]*queue.Entry buffers for settling.
	entryBatches sync.Pool
}

// New creates a server with cfg, opening (or, with st non-nil, using) its
// store and restoring the durable state it holds.
func New(cfg Config, st Store) (*Server, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{
		cfg:    cfg,
		log:    log,
		store:  st,
		users:  NewUsers(),
		vhosts: map[string]*Vhost{},
		conns:  map[*conn]struct{}{},
	}
	s.replyTo.init()
	s.stop = make(chan struct{})
	s.pageKick = make(chan struct{}, 1)
	memLimit := cfg.MemoryLimit
	if memLimit == 0 && cfg.MemoryHighWatermark > 0 {
		memLimit = uint64(float64(totalMemory()) * cfg.MemoryHighWatermark)
	}
	s.alarms.init(memLimit, cfg.DiskFreeLimit)
	s.setMemoryPressure(0, 0)
	s.routers.New = func() any { return new(exchange.Router) }
	if err := s.ids.init(st, cfg.NodeID, idLease, log); err != nil {
		return nil, err
	}
	if cfg.Remote != nil {
		cfg.Remote.Serve(s)
	}
	if err := s.loadQueueGens(); err != nil {
		return nil, fmt.Errorf("read queue generations: %w", err)
	}
	if err := s.restoreMetadata(); err != nil {
		return nil, err
	}
	s.watchStoreSpace()
	go s.pageUnderPressure(s.stop)
	if cfg.AlarmInterval > 0 {
		go s.monitorAlarms(cfg.AlarmInterval, s.stop)
		go s.watchMemory(s.stop)
	}
	return s, nil
}

// Users returns the user registry.
func (s *Server) Users() *Users { return s.users }

// Config returns the server's configuration.
func (s *Server) Config() Config { return s.cfg }

// Vhost returns the named vhost, or nil.
func (s *Server) Vhost(name string) *Vhost {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.vhosts[name]
}

// Vhosts returns every vhost.
func (s *Server) Vhosts() []*Vhost {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Vhost, 0, len(s.vhosts))
	for _, v := range s.vhosts {
		out = append(out, v)
	}
	return out
}

// ListenAndServe listens on cfg.AMQPListen and serves until Close.
func (s *Server) ListenAndServe() error {
	ln, err := net.Listen("tcp", s.cfg.AMQPListen)
	if err != nil {
		return fmt.Errorf("listen amqp %s: %w", s.cfg.AMQPListen, err)
	}
	return s.Serve(ln)
}

// Serve accepts AMQP connections on ln until Close. It returns nil after Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.listeners = append(s.listeners, ln)
	s.mu.Unlock()
	s.log.Info("amqp listener started", "addr", ln.Addr().String())
	var st acceptState
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return nil
			}
			if !retryableAccept(err) {
				return fmt.Errorf("accept: %w", err)
			}
			if !s.sleepOrStop(s.acceptFailed(&st, err)) {
				return nil
			}
			continue
		}
		s.accepted(&st)
		if s.overConnectionLimit(&st) {
			nc.Close()
			continue
		}
		s.startConn(nc)
	}
}

func (s *Server) startConn(nc net.Conn) {
	c := newConn(s, nc)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		nc.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		c.serve()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
}

// connections returns a snapshot of the open connections.
func (s *Server) connections() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

// ConnectionCount is the number of connections the server holds,
// including those in the handshake and those closing (ConnectionInfos
// lists the open ones).
func (s *Server) ConnectionCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// closeGrace is how long Close waits for connections after closing their
// sockets once ctx is done.
const closeGrace = 5 * time.Second

// Close stops accepting, closes every connection with 320 CONNECTION_FORCED,
// waits for them (bounded by ctx), closes a metadata log that has a Close
// (Config.MetaLog) and closes the store. Connections still running when
// ctx is done have their sockets closed; if they do not stop within
// closeGrace after that, Close returns an error and leaves the store open
// rather than wait for ever.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.closing = true
	close(s.stop)
	for _, ln := range s.listeners {
		ln.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.forceClose(amqp.Errorf(amqp.ConnectionForced, "broker forced connection closure with reason 'shutdown'"))
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		for _, c := range conns {
			c.nc.Close()
			c.wake()
		}
		select {
		case <-done:
		case <-time.After(closeGrace):
			// Something holds a connection's goroutine that closing its
			// socket did not wake. Closing the store under it could
			// crash; leaving it open loses nothing that was promised
			// (commits are synced), and the process's exit frees it.
			n := s.ConnectionCount()
			s.log.Error("connections did not stop; leaving the store open", "connections", n)
			return fmt.Errorf("%d connections did not stop within %v of closing their sockets", n, closeGrace)
		}
	}
	// No connection proposes any more; a replicated log stops applying
	// (and so touching the store) before the store closes.
	logErr := s.closeMetaLog()
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			return fmt.Errorf("close store: %w", err)
		}
	}
	return logErr
}
