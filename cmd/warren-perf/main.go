// Command warren-perf is a load tool in the spirit of RabbitMQ's PerfTest.
// It measures any AMQP 0-9-1 broker: publish and consume rates and
// end-to-end latency (the producer's timestamp travels in the body).
//
//	warren-perf -x 1 -y 1 -s 16 -d 10s            # one scenario
//	warren-perf matrix --warren bin/warren         # Warren vs RabbitMQ table
//	warren-perf matrix --no-rabbitmq --scenarios cluster  # three Warren nodes
//	warren-perf backlog --warren bin/warren        # issue 4's backlog figures
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "matrix" {
		if err := runMatrix(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "warren-perf matrix:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "backlog" {
		if err := runBacklog(os.Args[2:]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return
			}
			fmt.Fprintln(os.Stderr, "warren-perf backlog:", err)
			os.Exit(1)
		}
		return
	}
	cfg, err := parseConfig(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "warren-perf:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sum, err := run(ctx, cfg, func(s second) { printSecond(cfg, s) })
	if err != nil {
		fmt.Fprintln(os.Stderr, "warren-perf:", err)
		os.Exit(1)
	}
	printSummary(cfg, sum)
}

// config is one scenario.
type config struct {
	URI string `json:"-"`
	// PublishURI and ConsumeURI, when set, are where the producers and
	// the consumers connect instead of URI, where the queues are declared
	// and deleted (the cluster scenario publishes and consumes on other
	// nodes than the queue's).
	PublishURI   string        `json:"-"`
	ConsumeURI   string        `json:"-"`
	Producers    int           `json:"producers"`
	Consumers    int           `json:"consumers"`
	Queues       int           `json:"queues"`
	Size         int           `json:"size"`
	Duration     time.Duration `json:"duration"`
	Confirm      int           `json:"confirm"`
	Persistent   bool          `json:"persistent"`
	AutoAck      bool          `json:"autoack"`
	Prefetch     int           `json:"prefetch"`
	MultiAck     int           `json:"multi_ack"`
	Rate         int           `json:"rate"`
	ExchangeType string        `json:"exchange_type"`
	RoutingKey   string        `json:"routing_key"`
	Prefill      int           `json:"prefill"`
	Client       string        `json:"client,omitempty"` // "fast" (also when empty) or "amqp091"
	JSON         bool          `json:"-"`
	Quiet        bool          `json:"-"`
}

func parseConfig(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("warren-perf", flag.ContinueOnError)
	fs.StringVar(&c.URI, "uri", "amqp://guest:guest@127.0.0.1:5672/", "broker URI")
	fs.StringVar(&c.PublishURI, "publish-uri", "", "the producers' broker URI, when not -uri (e.g. another node of a cluster)")
	fs.StringVar(&c.ConsumeURI, "consume-uri", "", "the consumers' broker URI, when not -uri (e.g. another node of a cluster)")
	fs.IntVar(&c.Producers, "x", 1, "producers")
	fs.IntVar(&c.Consumers, "y", 1, "consumers")
	fs.IntVar(&c.Queues, "q", 1, "queues")
	fs.IntVar(&c.Size, "s", 16, "message size in bytes (>= 8: the body carries the send time)")
	fs.DurationVar(&c.Duration, "d", 10*time.Second, "duration")
	fs.IntVar(&c.Confirm, "c", 0, "publisher confirm window (0: no confirms)")
	fs.BoolVar(&c.Persistent, "persistent", false, "persistent messages and durable queues")
	fs.BoolVar(&c.AutoAck, "autoack", false, "consume without acks")
	fs.IntVar(&c.Prefetch, "prefetch", 1000, "consumer prefetch (0: unlimited)")
	fs.IntVar(&c.MultiAck, "multi-ack", 1, "ack every N deliveries with multiple=true")
	fs.IntVar(&c.Rate, "rate", 0, "messages per second per producer (0: unlimited)")
	fs.StringVar(&c.ExchangeType, "exchange-type", "direct", "direct (default exchange), fanout or topic")
	fs.StringVar(&c.RoutingKey, "routing-key", "perf.key", "routing key for topic publishing (queues bind with it too)")
	fs.StringVar(&c.Client, "client", clientFast, "producers' and consumers' client: fast (batched writes over Warren's codec) or amqp091 (amqp091-go)")
	fs.IntVar(&c.Prefill, "prefill", 0, "publish N messages (with confirms) before consumers start, then measure the consumers draining them; -d bounds the drain")
	fs.BoolVar(&c.JSON, "json", false, "print one JSON object per second and a summary object")
	selfTest := fs.Bool("self-test", false, "measure warren-perf's own publish ceiling against a built-in sink that discards")
	selfConsume := fs.Bool("self-test-consume", false, "measure warren-perf's own consume ceiling (-y consumers) fed by the built-in sink")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if *selfTest || *selfConsume {
		addr, stop, err := startSink()
		if err != nil {
			return c, err
		}
		_ = stop // the sink lives as long as the process
		c.URI = "amqp://guest:guest@" + addr + "/"
		if *selfConsume {
			c.Producers = 0
		} else {
			c.Consumers = 0
		}
	}
	return c, c.validate()
}

func (c *config) validate() error {
	switch {
	case c.Producers < 0 || c.Consumers < 0:
		return errors.New("-x and -y must not be negative")
	case c.Queues < 1:
		return errors.New("-q must be at least 1")
	case c.Size < 8:
		return errors.New("-s must be at least 8 (the body carries the send time)")
	case c.Duration <= 0:
		return errors.New("-d must be positive")
	case c.Confirm < 0 || c.Prefetch < 0 || c.MultiAck < 1 || c.Rate < 0 || c.Prefill < 0:
		return errors.New("-c, --prefetch, --rate and --prefill must not be negative, --multi-ack at least 1")
	case c.ExchangeType != "direct" && c.ExchangeType != "fanout" && c.ExchangeType != "topic":
		return fmt.Errorf("--exchange-type %q: want direct, fanout or topic", c.ExchangeType)
	case c.Client != "" && c.Client != clientFast && c.Client != clientAMQP091:
		return fmt.Errorf("--client %q: want fast or amqp091", c.Client)
	}
	if c.ExchangeType == "fanout" && c.Consumers < c.Queues {
		c.Consumers = c.Queues // one consumer per queue
	}
	return nil
}

// second is one interval's figures.
type second struct {
	Elapsed     float64 `json:"elapsed_s"`
	PublishRate float64 `json:"publish_rate"`
	ConfirmRate float64 `json:"confirm_rate"`
	ConsumeRate float64 `json:"consume_rate"`
	P50         float64 `json:"latency_p50_ms"`
	P95         float64 `json:"latency_p95_ms"`
	P99         float64 `json:"latency_p99_ms"`
}

// summary is the run's averages (after the first second of warm-up).
type summary struct {
	Config      config  `json:"config"`
	PublishRate float64 `json:"publish_rate"`
	ConsumeRate float64 `json:"consume_rate"`
	P50         float64 `json:"latency_p50_ms"`
	P95         float64 `json:"latency_p95_ms"`
	P99         float64 `json:"latency_p99_ms"`
	Published   uint64  `json:"published"`
	Consumed    uint64  `json:"consumed"`
	// PrefillRate is the publish rate of the prefill (with confirms), and
	// Drained whether the consumers emptied the queues within the
	// duration; with --prefill, ConsumeRate is the drain's rate from the
	// first to the last delivery.
	PrefillRate float64 `json:"prefill_rate,omitempty"`
	Drained     bool    `json:"drained,omitempty"`
}

func printSecond(c config, s second) {
	if c.Quiet {
		return
	}
	if c.JSON {
		json.NewEncoder(os.Stdout).Encode(s)
		return
	}
	fmt.Printf("time %5.1fs  sent %9.0f msg/s  confirmed %9.0f msg/s  received %9.0f msg/s  latency p50 %7.3f ms  p95 %7.3f ms  p99 %7.3f ms\n",
		s.Elapsed, s.PublishRate, s.ConfirmRate, s.ConsumeRate, s.P50, s.P95, s.P99)
}

func printSummary(c config, s summary) {
	if c.JSON {
		json.NewEncoder(os.Stdout).Encode(s)
		return
	}
	if c.Prefill > 0 {
		state := "drained"
		if !s.Drained {
			state = "not drained within " + c.Duration.String()
		}
		fmt.Printf("summary: prefilled %d at %.0f msg/s (with confirms), %s at %.0f msg/s (%d received)\n",
			c.Prefill, s.PrefillRate, state, s.ConsumeRate, s.Consumed)
		return
	}
	fmt.Printf("summary: sent %.0f msg/s, received %.0f msg/s, latency p50 %.3f ms p95 %.3f ms p99 %.3f ms (%d sent, %d received)\n",
		s.PublishRate, s.ConsumeRate, s.P50, s.P95, s.P99, s.Published, s.Consumed)
}
