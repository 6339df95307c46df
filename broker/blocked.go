package broker

import (
	"time"

	"github.com/warrenmq/warren/amqp"
)

// Blocked publishers. While a resource alarm is active a publishing
// connection's reader waits in waitIfBlocked and reads nothing, so that
// its client's publishes stay in the socket (TCP pushes back). The wait
// must still end when the connection does:
//   - the broker closes it (shutdown, management, a deleted user or
//     vhost): forceClose wakes the reader, which then waits for close-ok
//     as usual, bounded by closeOkTimeout;
//   - the writer fails (the peer is gone and a heartbeat or delivery
//     could not be written): it wakes the reader too;
//   - the client goes away without a word: nothing is read, so the
//     reader looks at the socket's state every blockedPeerCheck and
//     tears the connection down once the peer has closed or reset it
//     (peerGone, blocked_linux.go), even with publishes still unread.

// blockedPeerCheck is how often a blocked reader checks that its peer is
// still there.
const blockedPeerCheck = 500 * time.Millisecond

// wake makes a reader held by waitIfBlocked stop waiting; the
// connection is closing. Any goroutine may call it, more than once.
func (c *conn) wake() {
	c.wakeOnce.Do(func() { close(c.wakeCh) })
}

// waitIfBlocked holds a publishing connection while an alarm is active.
// It runs on the reader goroutine after a publish, so the socket is not
// read meanwhile. It returns when the alarms clear, or when the
// connection is closing (the reader then goes on to finish it).
func (c *conn) waitIfBlocked() {
	reason, cleared, ok := c.srv.alarms.blocked()
	if !ok {
		return
	}
	c.flushConfirms()
	notify := c.announces("connection.blocked")
	if notify {
		c.out.method(0, &amqp.ConnectionBlocked{Reason: reason})
	}
	c.log.Info("connection blocked", "reason", reason)
	check := time.NewTicker(blockedPeerCheck)
	defer check.Stop()
	for {
		select {
		case <-cleared:
			if notify {
				c.out.method(0, &amqp.ConnectionUnblocked{})
			}
			c.log.Info("connection unblocked")
			return
		case <-c.wakeCh:
			return
		case <-c.done:
			return
		case <-check.C:
			if gone, err := peerGone(c.nc); gone {
				c.log.Info("blocked client went away", "err", err)
				c.nc.Close() // the reader's next read fails and tears down
				return
			}
		}
	}
}
