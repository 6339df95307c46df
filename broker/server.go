package broker

import (
	"context"
	"errors"
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

	ids msgIDs // message ids (msgid.go)
	// memoryPressure is set while memory use is past the paging ratio of
	// the high watermark (always with a ratio of 0): transient messages
	// past a queue's bound then page out.
	memoryPressure atomic.Bool
	nextConn       atomic.Uint64

	mu        sync.Mutex
	vhosts    map[string]*Vhost
	conns     map[*conn]struct{}
	listeners []net.Listener
	closing   bool
	wg        sync.WaitGroup // connection goroutines

	alarms  alarms
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
	if err := s.restoreMetadata(); err != nil {
		return nil, err
	}
	if cfg.AlarmInterval > 0 {
		go s.monitorAlarms(cfg.AlarmInterval, s.stop)
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
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed, retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		delay = 0
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

// Close stops accepting, closes every connection with 320 CONNECTION_FORCED,
// waits for them (bounded by ctx), closes a metadata log that has a Close
// (Config.MetaLog) and closes the store.
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
		}
		<-done
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
