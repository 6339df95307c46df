package broker

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// Accepting connections under pressure. A listener whose accept fails
// for want of a resource (file descriptors, kernel buffers) or because a
// peer gave up during the TCP handshake keeps accepting: it waits, longer
// after each failure up to acceptMaxDelay, and tries again, as Go's
// net/http and RabbitMQ's ranch do. The first failure of a burst is
// logged, and the burst's end with how many failures it had, so a flood
// of connections writes two lines, not thousands. While descriptors are
// short, accepts that work and accepts that fail alternate as
// connections come and go: a burst ends only with an accept that comes
// acceptQuiet after the last failure.
//
// Config.MaxConnections refuses connections past a count (RabbitMQ's
// connection_max) before the process runs out of descriptors: a refused
// connection is accepted and closed at once, so its client fails fast
// instead of waiting in the listen backlog, and the descriptor is free
// again. Refusals are logged once per burst too.

const (
	// acceptMinDelay and acceptMaxDelay bound the wait between accepts
	// after a failure; it doubles with each failure of a burst.
	acceptMinDelay = 5 * time.Millisecond
	acceptMaxDelay = time.Second
	// acceptQuiet is how long accepts must have worked for a burst of
	// failures to end.
	acceptQuiet = time.Second
)

// retryableAccept reports whether an accept error is worth retrying: a
// timeout, running out of descriptors or memory, or a connection the peer
// aborted before it was accepted. Anything else (the listener closed)
// ends the accept loop.
func retryableAccept(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EPROTO, syscall.EPERM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// acceptState is one accept loop's view of its bursts of failures and
// refusals; only that loop uses it.
type acceptState struct {
	delay    time.Duration // the wait after the next failure
	failures int           // failed accepts in the current burst; 0 outside one
	since    time.Time     // start of the current burst of failures
	last     time.Time     // the burst's last failure
	refused  int           // connections refused in the current burst of refusals
	lastRef  time.Time     // the last refusal
}

// failed records a failed accept, logs it when it starts a burst, and
// returns how long to wait before the next accept.
func (s *Server) acceptFailed(st *acceptState, err error) time.Duration {
	if st.failures == 0 {
		st.since = time.Now()
		s.log.Warn("accepting connections failed; retrying with backoff until it works again", "err", err)
	}
	st.failures++
	st.last = time.Now()
	st.delay = min(max(2*st.delay, acceptMinDelay), acceptMaxDelay)
	return st.delay
}

// accepted records a working accept: the backoff starts again from its
// minimum, and a burst of failures quiet for acceptQuiet ends, logged
// with how many failures it had.
func (s *Server) accepted(st *acceptState) {
	st.delay = 0
	if st.failures > 0 && time.Since(st.last) >= acceptQuiet {
		s.log.Info("accepting connections again", "failed_accepts", st.failures, "lasted", st.last.Sub(st.since).Round(time.Millisecond))
		st.failures = 0
	}
}

// overConnectionLimit reports whether a new connection would pass
// Config.MaxConnections; if so it logs the first refusal of a burst (which
// ends, as one of failures does, acceptQuiet after its last refusal).
func (s *Server) overConnectionLimit(st *acceptState) bool {
	limit := s.cfg.MaxConnections
	if limit <= 0 {
		return false
	}
	if n := s.ConnectionCount(); n < limit {
		if st.refused > 0 && time.Since(st.lastRef) >= acceptQuiet {
			s.log.Info("connection limit: accepting connections again", "refused", st.refused, "limit", limit)
			st.refused = 0
		}
		return false
	}
	if st.refused == 0 {
		s.log.Warn("connection limit reached; refusing new connections", "limit", limit)
	}
	st.refused++
	st.lastRef = time.Now()
	s.refusedConns.Add(1)
	return true
}

// RefusedConnections is how many connections were refused for the
// connection limit since the server started.
func (s *Server) RefusedConnections() uint64 { return s.refusedConns.Load() }

// sleepOrStop waits d, or less if the server closes; it reports whether
// the server is still open.
func (s *Server) sleepOrStop(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.stop:
		return false
	}
}
