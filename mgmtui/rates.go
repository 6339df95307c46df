package mgmtui

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/broker"
)

// sampler turns counters into rates: every interval it records each
// object's counters and keeps, per object, the per-second rate of change
// since the previous sample. A sweep builds a new map and publishes it
// whole, so readers take no lock and never wait for a sweep over many
// thousands of queues.
type sampler struct {
	samples atomic.Pointer[map[string]*sample] // published maps are never modified
}

type sample struct {
	at     time.Time
	values []float64
	rates  []float64
}

func newSampler() *sampler {
	s := &sampler{}
	s.samples.Store(&map[string]*sample{})
	return s
}

// sweep is one sampling pass: the samples of the previous pass and the
// ones being recorded.
type sweep struct {
	now        time.Time
	prev, next map[string]*sample
}

// observe records an object's counters and its rates since the previous pass.
func (w *sweep) observe(key string, values []float64) {
	n := &sample{at: w.now, values: values, rates: make([]float64, len(values))}
	w.next[key] = n
	p := w.prev[key]
	if p == nil {
		return
	}
	dt := w.now.Sub(p.at).Seconds()
	if dt <= 0 || len(p.values) != len(values) {
		n.rates = p.rates
		return
	}
	for i, v := range values {
		r := (v - p.values[i]) / dt
		if r < 0 && i < int(broker.NumStats)+1 {
			r = 0 // a counter restarted (its object was recreated)
		}
		n.rates[i] = r
	}
}

// rates returns an object's last rates (nil before two samples).
func (s *sampler) rates(key string) []float64 {
	if p := (*s.samples.Load())[key]; p != nil {
		return p.rates
	}
	return nil
}

// sampleLoop samples every interval until ctx ends.
func (a *API) sampleLoop(ctx context.Context) {
	t := time.NewTicker(a.opts.SampleInterval)
	defer t.Stop()
	a.sampleOnce(time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			a.sampleOnce(now)
		}
	}
}

// sampleOnce records every object's counters and forgets objects gone. It
// runs on the sampling goroutine only.
func (a *API) sampleOnce(now time.Time) {
	prev := *a.rates.samples.Load()
	s := &sweep{now: now, prev: prev, next: make(map[string]*sample, len(prev))}
	var total broker.MessageStats
	var totals queueTotals
	for _, v := range a.srv.Vhosts() {
		ms := v.MessageStats()
		total.Add(&ms)
		var vt queueTotals
		for _, q := range v.Queues() {
			if _, remote := q.(broker.RemoteQueue); remote {
				continue // sampled by its home node; a round trip each is too dear here
			}
			info := q.Info()
			vt.add(info)
			qs := q.MessageStats()
			s.observe(queueKey(v.Name(), info.Name), statValues(&qs, float64(info.Ready+info.Unacked), float64(info.Ready), float64(info.Unacked)))
		}
		totals.addTotals(vt)
		s.observe(vhostKey(v.Name()), statValues(&ms, float64(vt.ready+vt.unacked), float64(vt.ready), float64(vt.unacked)))
		for _, e := range v.Exchanges() {
			es := exchangeStats(e.PublishIn.Load(), e.PublishOut.Load())
			s.observe(exchangeKey(v.Name(), e.Name), statValues(&es))
		}
	}
	s.observe(overviewKey, statValues(&total, float64(totals.ready+totals.unacked), float64(totals.ready), float64(totals.unacked)))
	for _, c := range a.srv.ConnectionInfos() {
		s.observe(connectionKey(c.Name), statValues(&c.Stats, float64(c.RecvOct), float64(c.SendOct)))
	}
	for _, ch := range a.srv.ChannelInfos() {
		s.observe(channelKey(ch.Connection, ch.Number), statValues(&ch.Stats))
	}
	a.rates.samples.Store(&s.next)
}

const overviewKey = "overview"

func queueKey(vhost, name string) string    { return "q\x00" + vhost + "\x00" + name }
func exchangeKey(vhost, name string) string { return "e\x00" + vhost + "\x00" + name }
func vhostKey(vhost string) string          { return "v\x00" + vhost }
func connectionKey(name string) string      { return "c\x00" + name }
func channelKey(conn string, n uint16) string {
	return "ch\x00" + conn + "\x00" + strconv.Itoa(int(n))
}

// exchangeStats places an exchange's counters in a MessageStats.
func exchangeStats(in, out uint64) broker.MessageStats {
	var s broker.MessageStats
	s[broker.StatPublishIn], s[broker.StatPublishOut] = in, out
	return s
}

// statValues lays out counters for the sampler: the message stats, then
// deliver_get, then any gauges.
func statValues(s *broker.MessageStats, gauges ...float64) []float64 {
	out := make([]float64, 0, int(broker.NumStats)+1+len(gauges))
	for _, v := range s {
		out = append(out, float64(v))
	}
	out = append(out, float64(deliverGet(s)))
	return append(out, gauges...)
}

func deliverGet(s *broker.MessageStats) uint64 {
	return s[broker.StatDeliver] + s[broker.StatDeliverNoAck] + s[broker.StatGet] + s[broker.StatGetNoAck]
}

// rateAt returns rates[i], or 0.
func rateAt(rates []float64, i int) float64 {
	if i < len(rates) {
		return rates[i]
	}
	return 0
}

// details is the API's {"rate": r} object.
func details(rate float64) map[string]any { return map[string]any{"rate": rate} }

// messageStats renders counters and their rates as the API's
// message_stats object; only is the counters to show (nil: all).
func messageStats(s *broker.MessageStats, rates []float64, only ...broker.Stat) map[string]any {
	out := map[string]any{}
	put := func(name string, v uint64, i int) {
		out[name] = v
		out[name+"_details"] = details(rateAt(rates, i))
	}
	if only == nil {
		for i, name := range broker.StatNames {
			put(name, s[i], i)
		}
		put("deliver_get", deliverGet(s), int(broker.NumStats))
		return out
	}
	for _, k := range only {
		put(broker.StatNames[k], s[k], int(k))
	}
	return out
}

// queueTotals sums queue counts.
type queueTotals struct {
	ready, unacked int
	readyBytes     int64
}

func (t *queueTotals) add(q broker.QueueInfo) {
	t.ready += q.Ready
	t.unacked += q.Unacked
	t.readyBytes += q.ReadyBytes
}

func (t *queueTotals) addTotals(o queueTotals) {
	t.ready += o.ready
	t.unacked += o.unacked
	t.readyBytes += o.readyBytes
}

// gaugeObject renders messages/ready/unacked counts with the rates found
// after the message stats in rates.
func (t queueTotals) object(rates []float64) map[string]any {
	base := int(broker.NumStats) + 1
	return map[string]any{
		"messages":                        t.ready + t.unacked,
		"messages_details":                details(rateAt(rates, base)),
		"messages_ready":                  t.ready,
		"messages_ready_details":          details(rateAt(rates, base+1)),
		"messages_unacknowledged":         t.unacked,
		"messages_unacknowledged_details": details(rateAt(rates, base+2)),
	}
}
