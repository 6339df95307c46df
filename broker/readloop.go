package broker

import (
	"errors"
	"io"
	"time"

	"github.com/warrenmq/warren/amqp"
)

// readLoop reads frames until the connection ends, running each method on
// the reader goroutine.
func (c *conn) readLoop() {
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			var ae *amqp.Error
			if errors.As(err, &ae) && !c.closing.Load() {
				c.log.Warn("closing connection", "code", ae.Code, "reason", ae.Text)
				c.closeWith(ae)
				c.discardInput() // the stream is out of step: frames cannot be parsed any more
			} else if !c.closing.Load() {
				c.log.Debug("connection read ended", "err", err)
			}
			return
		}
		if c.closing.Load() {
			if c.onFrameWhileClosing(f) {
				return
			}
			continue
		}
		if err := c.handleFrame(f); err != nil {
			if errors.Is(err, errClientClosed) {
				return
			}
			var ae *amqp.Error
			if !errors.As(err, &ae) {
				ae = amqp.Errorf(amqp.InternalError, "%v", err)
			}
			c.log.Warn("closing connection", "code", ae.Code, "reason", ae.Text)
			c.closeWith(ae)
			c.awaitCloseOk()
			return
		}
		if c.fr.Buffered() == 0 {
			c.flushConfirms() // the end of a burst: one ack frame covers it
			if c.closing.Load() {
				c.awaitCloseOk()
				return
			}
		}
	}
}

// discardInput reads and drops what the peer sends until it closes or
// closeOkTimeout passes, so that closing does not reset the connection
// before the peer has read our connection.close.
func (c *conn) discardInput() {
	c.nc.SetReadDeadline(time.Now().Add(closeOkTimeout))
	io.Copy(io.Discard, c.nc)
}

// onFrameWhileClosing handles a frame after we sent connection.close: only
// close-ok and close count. It reports whether the connection is done.
func (c *conn) onFrameWhileClosing(f amqp.Frame) bool {
	if f.Type != amqp.FrameMethod || f.Channel != 0 {
		return false
	}
	m, err := amqp.DecodeMethod(f.Payload)
	if err != nil {
		return true
	}
	switch m.(type) {
	case *amqp.ConnectionCloseOk:
		return true
	case *amqp.ConnectionClose:
		c.out.method(0, &amqp.ConnectionCloseOk{})
		return true
	}
	return false
}

// handleFrame runs one frame. A returned error closes the connection; soft
// errors are handled by closing the channel here.
func (c *conn) handleFrame(f amqp.Frame) error {
	switch f.Type {
	case amqp.FrameHeartbeat:
		return nil
	case amqp.FrameMethod:
		m, err := c.dec.Decode(f.Payload)
		if err != nil {
			return err
		}
		if f.Channel == 0 {
			return c.handleConnMethod(m)
		}
		return c.channelMethod(f.Channel, m)
	case amqp.FrameHeader, amqp.FrameBody:
		if f.Channel == 0 {
			return amqp.Errorf(amqp.UnexpectedFrame, "content frame on channel 0")
		}
		ch := c.channel(f.Channel)
		if ch == nil {
			return amqp.Errorf(amqp.ChannelError, "expected 'channel.open' on channel %d", f.Channel)
		}
		if ch.closing {
			return nil
		}
		// Content belongs to basic.publish, the method errors name.
		return c.soft(ch, failingMethod(ch.onContent(f), basicPublish))
	}
	return amqp.Errorf(amqp.FrameError, "unknown frame type %d", f.Type)
}

// channel returns the open channel with the id, or nil.
func (c *conn) channel(id uint16) *channel {
	if c.lastCh != nil && c.lastCh.id == id {
		return c.lastCh
	}
	ch := c.channels[id]
	if ch != nil {
		c.lastCh = ch
	}
	return ch
}

func (c *conn) handleConnMethod(m amqp.Method) error {
	switch m := m.(type) {
	case *amqp.ConnectionClose:
		c.log.Debug("client closed connection", "code", m.ReplyCode, "text", m.ReplyText)
		c.closing.Store(true)
		// The channels are shut down (their unacked messages requeued) and
		// the exclusive queues deleted before close-ok, so that a client
		// sees both done once its close returns.
		for _, ch := range c.channelList() {
			ch.shutdown()
		}
		c.dropExclusiveQueues()
		c.out.method(0, &amqp.ConnectionCloseOk{})
		c.clientClosed.Store(true)
		return errClientClosed
	case *amqp.ConnectionCloseOk:
		return errClientClosed
	case *amqp.ConnectionBlocked, *amqp.ConnectionUnblocked:
		return nil
	case *amqp.ConnectionUpdateSecret:
		c.out.method(0, &amqp.ConnectionUpdateSecretOk{})
		return nil
	}
	return amqp.Errorf(amqp.CommandInvalid, "unexpected method '%s' on channel 0", m.Name())
}

// errClientClosed ends the read loop after the client closed the connection.
var errClientClosed = errors.New("client closed the connection")

// channelMethod runs a method on a channel other than 0.
func (c *conn) channelMethod(id uint16, m amqp.Method) error {
	ch := c.channel(id)
	if ch == nil {
		if _, ok := m.(*amqp.ChannelOpen); !ok {
			return amqp.Errorf(amqp.ChannelError, "expected 'channel.open' on channel %d", id).
				WithMethod(m.ClassID(), m.MethodID())
		}
		if id > c.channelMax {
			return amqp.Errorf(amqp.NotAllowed, "channel %d exceeds channel_max %d", id, c.channelMax).
				WithMethod(m.ClassID(), m.MethodID())
		}
		ch = newChannel(c, id)
		c.chMu.Lock()
		c.channels[id] = ch
		c.chMu.Unlock()
		c.out.method(id, &amqp.ChannelOpenOk{})
		return nil
	}
	if ch.closing {
		switch m.(type) {
		case *amqp.ChannelCloseOk:
			c.freeChannel(ch)
		case *amqp.ChannelClose:
			c.out.method(id, &amqp.ChannelCloseOk{})
		}
		return nil
	}
	return c.soft(ch, failingMethod(ch.handle(m), m))
}

// basicPublish names the method that content frames belong to.
var basicPublish amqp.Method = &amqp.BasicPublish{}

// failingMethod sets m as the failing method of an AMQP error that names
// none, as channel.close and connection.close report it.
func failingMethod(err error, m amqp.Method) error {
	if ae, ok := err.(*amqp.Error); ok && ae.ClassID == 0 {
		return ae.WithMethod(m.ClassID(), m.MethodID())
	}
	return err
}

// soft turns a channel-level error into channel.close and passes
// connection-level errors up.
func (c *conn) soft(ch *channel, err error) error {
	if err == nil {
		return nil
	}
	var ae *amqp.Error
	if !errors.As(err, &ae) {
		return err
	}
	if ae.ConnectionLevel() {
		return ae
	}
	c.log.Info("closing channel", "channel", ch.id, "code", ae.Code, "reason", ae.Text)
	ch.shutdown()
	ch.closing = true
	c.out.method(ch.id, &amqp.ChannelClose{ReplyCode: ae.Code, ReplyText: ae.Text, FailingClassID: ae.ClassID, FailingMethodID: ae.MethodID})
	return nil
}

func (c *conn) freeChannel(ch *channel) {
	c.chMu.Lock()
	c.retireChannelLocked(ch)
	delete(c.channels, ch.id)
	c.chMu.Unlock()
	if c.lastCh == ch {
		c.lastCh = nil
	}
}
