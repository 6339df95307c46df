package broker

import "time"

// Publisher flow control. A queue with consumers whose backlog of ready
// messages keeps growing is being fed faster than it is drained; the
// publishing connection then pauses (its socket is not read) until the
// backlog falls back, so producers run at the consumers' pace instead of
// filling memory. Queues without consumers are a backlog by design and never
// slow publishers down. Like RabbitMQ's credit flow, this only delays: a
// pause is bounded, so a stuck consumer does not stop publishers for good.

const (
	// flowCheckEvery is how many publishes of a channel pass between checks.
	flowCheckEvery = 128
	// flowHigh and flowLow are the backlog that starts and ends a pause.
	flowHigh = 4000
	flowLow  = 1000
	// flowMaxPause bounds one pause.
	flowMaxPause = 100 * time.Millisecond
	// flowPoll is how often the backlog is looked at during a pause.
	flowPoll = time.Millisecond
)

// pace pauses the reader while a queue the channel publishes to has a
// growing backlog in front of its consumers.
func (ch *channel) pace(queues []QueueHandle) {
	ch.sincePaced++
	if ch.sincePaced < flowCheckEvery {
		return
	}
	ch.sincePaced = 0
	for _, q := range queues {
		if !overloaded(q, flowHigh) {
			continue
		}
		ch.c.flushConfirms()
		deadline := time.Now().Add(flowMaxPause)
		for overloaded(q, flowLow) && time.Now().Before(deadline) {
			time.Sleep(flowPoll)
		}
	}
}

// overloaded reports whether q has consumers and more than limit ready
// messages. Queues on other nodes are left out (their counts are a round
// trip away): the link's back-pressure paces publishers to them
// (waitRemote).
func overloaded(q QueueHandle, limit int) bool {
	if _, remote := q.(RemoteQueue); remote {
		return false
	}
	ready, _, consumers := q.Counts()
	return consumers > 0 && ready > limit
}
