package main

import (
	"fmt"
	"strings"
	"time"
)

// renderMeta formats the metadata scenario's section of the report, or
// returns "" when the run did not measure it.
func (r *report) renderMeta() string {
	m, ok := r.find(metaID)
	if !ok {
		return ""
	}
	var b strings.Builder
	n := formatCount(metaQueues)
	if len(m.figures) > 0 && m.figures[0][metaQueuesAsked] > 0 {
		n = formatCount(int(m.figures[0][metaQueuesAsked]))
	}
	fmt.Fprintf(&b, "%s\n## Metadata: %s durable queues bound to a topic exchange\n\n", metaSection.start, n)
	fmt.Fprintf(&b, "Measured with `%s` on %s; %s; on %s. Each broker runs on loopback on this machine, measured one after the other, sharing the cores with warren-perf.\n\n",
		r.command, machine(), rabbitVersion(), time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "One client (amqp091-go, one channel) declares a durable topic exchange, then %s durable queues one after another, "+
		"each followed by a queue.bind to the exchange with routing key k.<i>, waiting for every declare-ok and bind-ok: "+
		"%s counts the queue.declare and queue.bind operations together (two per queue), and %s is the time all of them took. "+
		"Meanwhile, on connections of their own, one producer (warren-perf's %s client, 16 B, confirms with a window of 1000) publishes to an unrelated queue "+
		"through the default exchange and one consumer (prefetch 1000, multi-ack 100) drains it. "+
		"The producer's rate is measured over the whole declare phase, as its slowest one-second interval in that phase, "+
		"and before the declares, for %s with none running (after %s of warm-up). "+
		"The producer then stops and the client deletes the queues and the exchange, so that no later scenario sees them.\n\n",
		n, metaOpsRate, metaPhaseSecs, clientShortName(r.client), m.s.cfg.Duration, metaWarmUp)
	r.renderTable(&b, []row{m})
	var notes []string
	for i, f := range m.figures {
		name := r.brokers[i].name
		if done, asked := f[metaQueuesDone], f[metaQueuesAsked]; asked > 0 && done < asked {
			notes = append(notes, fmt.Sprintf("%s declared and bound only %s of the %s queues.", name, formatCount(int(done)), formatCount(int(asked))))
		}
		if idle, during := f[metaPubIdle], f[metaPubDuring]; idle > 0 && during > 0 {
			notes = append(notes, fmt.Sprintf("During the declares the producer kept %s of its rate without them on %s.", percentOf(during, idle), name))
		}
		if s := f[metaDeleteSecs]; s > 0 {
			notes = append(notes, fmt.Sprintf("Deleting the queues afterwards took %s s on %s (%s queue.delete/s, no traffic).", format(s), name, format(f[metaDeleteRate])))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintf(&b, "\n%s\n", strings.Join(notes, " "))
	}
	fmt.Fprintf(&b, "%s\n", metaSection.end)
	return b.String()
}

// clientShortName names a run's client in a sentence.
func clientShortName(client string) string {
	if client == clientAMQP091 {
		return "amqp091-go"
	}
	return "fast"
}
