package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// The cluster scenario (issue 12) measures three warren processes of the
// matrix's binary clustered on loopback: scenario (a) with its queue on
// node 1, its producer on node 2 and its consumer on node 3, next to (a)
// on the matrix's single node; the seconds until a consumer hears of the
// loss of its queue's node, and until a durable declare succeeds after
// the raft leader's loss; and the memory and CPU of the idle cluster
// holding many durable queues.
const clusterID = "cluster"

// clusterSizes are the cluster scenario's sizes and bounds; its test
// runs it smaller.
type clusterSizes struct {
	queues int // durable queues the idle cluster holds
	// settle is how long the nodes rest before memory is read (no event
	// tells when a Go process has returned what it freed).
	settle time.Duration
	idle   time.Duration // the window over which idle CPU is read
	// cancelWait bounds the wait for basic.cancel after the home's kill,
	// failoverWait the wait for a declare after the leader's.
	cancelWait, failoverWait time.Duration
}

// clusterDefaults are the sizes of the matrix's cluster scenario.
var clusterDefaults = clusterSizes{queues: 1000, settle: 5 * time.Second, idle: 30 * time.Second,
	cancelWait: 30 * time.Second, failoverWait: time.Minute}

// The cluster scenario's figures.
const (
	// (a) across nodes, and (a) on the single node in the same run.
	clSingleConsume = "single node: consume msg/s"
	clSinglePublish = "single node: publish msg/s"
	clConsume       = "consume msg/s on node 3"
	clPublish       = "publish msg/s on node 2"
	clRatio         = "consume rate / single node's"
	clPublished     = "messages published on node 2"
	clConsumed      = "messages consumed on node 3"
	clSingleCPU     = "single node: CPU s per 1M msgs"
	clCPUPerM       = "CPU s per 1M msgs consumed, 3 nodes"
	// Failure detection: the home of a queue killed, its consumer on
	// another node.
	clForwardedBefore = "message from the home delivered before the kill" // 1 or 0
	clShownDown       = "s until the killed home is shown down"
	clCancel          = "s to basic.cancel"
	clChannelClosed   = "s to the consumer's channel closing" // instead of a cancel
	clCancelWait      = "cancel wait s"
	// Leader failover.
	clFailover     = "s to the next durable declare"
	clRefused      = "declares refused meanwhile"
	clRefusedCode  = "reply code of the first refusal"
	clFailoverWait = "failover wait s"
	// The idle cluster.
	clQueues    = "queues"
	clIdleSecs  = "idle s"
	clRSSEmpty  = "RSS MiB, 3 nodes, before the queues"
	clCPUEmpty  = "CPU % of one core, 3 nodes, before the queues"
	clRSS       = "RSS MiB, 3 nodes"
	clRSSMax    = "RSS MiB, largest node"
	clCPU       = "CPU s, 3 nodes"
	clCPUOfCore = "CPU % of one core, 3 nodes"
)

// clusterColumns are the figures the cluster section's table shows.
var clusterColumns = []string{clSingleConsume, clConsume, clPublish, clRatio,
	clShownDown, clCancel, clFailover, clRSSEmpty, clCPUEmpty, clRSS, clRSSMax, clCPU, clCPUOfCore}

// measureCluster runs the cluster scenario: c is scenario (a)'s
// configuration, b the matrix's single Warren node, whose binary the
// cluster runs. A part that fails leaves its figures out and adds its
// error to the one returned; the other parts still run.
func measureCluster(b *broker, c config, sz clusterSizes) (map[string]float64, error) {
	fig := map[string]float64{clQueues: float64(sz.queues), clIdleSecs: sz.idle.Seconds()}
	if b.bin == "" {
		return fig, errors.New("the cluster scenario needs Warren's binary")
	}
	var errs []error
	failed := func(part string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", part, err))
		}
	}
	single, err := throughput(b, c)
	failed("(a) on the single node", err)
	fig[clSingleConsume], fig[clSinglePublish] = single["consume msg/s"], single["publish msg/s"]
	fig[clSingleCPU] = single["CPU s per 1M msgs"]

	cl, err := startCluster(b.bin, 3)
	if err != nil {
		failed("start three nodes", err)
		return fig, errors.Join(errs...)
	}
	failed("idle cluster", idleCluster(cl, sz, fig))
	failed("(a) across nodes", acrossNodes(cl, c, fig))
	if fig[clSingleConsume] > 0 && fig[clConsume] > 0 {
		fig[clRatio] = fig[clConsume] / fig[clSingleConsume]
	}
	failed("failure detection", homeFailure(cl, sz, fig))
	cl.stop()

	// The leader's loss on a cluster of its own: the one above lost a
	// node, and a majority of two cannot lose another.
	cl, err = startCluster(b.bin, 3)
	if err != nil {
		failed("start three nodes for the failover", err)
		return fig, errors.Join(errs...)
	}
	failed("leader failover", leaderFailover(cl, sz, fig))
	cl.stop()
	return fig, errors.Join(errs...)
}

// idleCluster reads the nodes' memory and their CPU over a third of
// sz.idle, declares sz.queues durable queues (a third on each node), and
// reads memory and CPU over sz.idle.
func idleCluster(cl *warrenCluster, sz clusterSizes, fig map[string]float64) error {
	time.Sleep(sz.settle)
	rss, _, err := clusterRSS(cl)
	if err != nil {
		return err
	}
	fig[clRSSEmpty] = rss
	cpu0, err := clusterCPU(cl)
	if err != nil {
		return err
	}
	time.Sleep(sz.idle / 3)
	cpu1, err := clusterCPU(cl)
	if err != nil {
		return err
	}
	fig[clCPUEmpty] = 100 * (cpu1 - cpu0) / (sz.idle / 3).Seconds()
	if err := declareIdleQueues(cl, sz.queues); err != nil {
		return err
	}
	time.Sleep(sz.settle)
	if cpu0, err = clusterCPU(cl); err != nil {
		return err
	}
	time.Sleep(sz.idle)
	cpu1, err = clusterCPU(cl)
	if err != nil {
		return err
	}
	rss, largest, err := clusterRSS(cl)
	if err != nil {
		return err
	}
	fig[clRSS], fig[clRSSMax] = rss, largest
	fig[clCPU] = cpu1 - cpu0
	fig[clCPUOfCore] = 100 * (cpu1 - cpu0) / sz.idle.Seconds()
	return nil
}

// clusterRSS returns the RSS of all the nodes together and of the largest,
// in MiB.
func clusterRSS(cl *warrenCluster) (total, largest float64, err error) {
	for _, nd := range cl.nodes {
		k, err := rssKiB(nd.pid())
		if err != nil {
			return 0, 0, fmt.Errorf("RSS of %s: %w", nd.name, err)
		}
		total += float64(k) / 1024
		largest = max(largest, float64(k)/1024)
	}
	return total, largest, nil
}

// clusterCPU returns the CPU seconds (user and system) of all the nodes.
func clusterCPU(cl *warrenCluster) (float64, error) {
	var sum float64
	for _, nd := range cl.nodes {
		s, err := cpuSeconds(nd.pid())
		if err != nil {
			return 0, fmt.Errorf("CPU of %s: %w", nd.name, err)
		}
		sum += s
	}
	return sum, nil
}

// declareIdleQueues declares n durable queues, node i declaring every
// third, all at once, and returns once every node has every queue.
func declareIdleQueues(cl *warrenCluster, n int) error {
	id := randomID()
	name := func(k int) string { return fmt.Sprintf("warren-perf-idle-%s-%d", id, k) }
	errs := make(chan error, len(cl.nodes))
	var wg sync.WaitGroup
	for i, nd := range cl.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch, stop, err := metaConn(nd.uri, metaPhaseTimeout)
			if err != nil {
				errs <- err
				return
			}
			defer stop()
			for k := i; k < n; k += len(cl.nodes) {
				if _, err := ch.QueueDeclare(name(k), true, false, false, false, nil); err != nil {
					errs <- fmt.Errorf("declare queue %d on %s: %w", k, nd.name, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	var failed []error
	for err := range errs {
		failed = append(failed, err)
	}
	if len(failed) > 0 {
		return errors.Join(failed...)
	}
	// A passive declare waits for the node to catch up with the leader:
	// once the last queue of each node is there, every queue is.
	for _, nd := range cl.nodes {
		ch, stop, err := metaConn(nd.uri, time.Minute)
		if err != nil {
			return err
		}
		for k := max(0, n-len(cl.nodes)); k < n; k++ {
			if _, err := ch.QueueDeclarePassive(name(k), true, false, false, false, nil); err != nil {
				stop()
				return fmt.Errorf("queue %d on %s: %w", k, nd.name, err)
			}
		}
		stop()
	}
	return nil
}

// acrossNodes runs scenario (a) with its queue declared on node 1, its
// producer on node 2 and its consumer on node 3, and reads each node's
// CPU over the run.
func acrossNodes(cl *warrenCluster, c config, fig map[string]float64) error {
	c.URI, c.PublishURI, c.ConsumeURI = cl.nodes[0].uri, cl.nodes[1].uri, cl.nodes[2].uri
	c.Quiet = true
	cpu0 := make([]float64, len(cl.nodes))
	for i, nd := range cl.nodes {
		cpu0[i], _ = cpuSeconds(nd.pid())
	}
	start := time.Now()
	s, err := run(context.Background(), c, func(second) {})
	elapsed := time.Since(start).Seconds()
	fig[clPublish], fig[clConsume] = s.PublishRate, s.ConsumeRate
	fig[clPublished], fig[clConsumed] = float64(s.Published), float64(s.Consumed)
	if s.Consumed > 0 {
		var sum float64
		for i, nd := range cl.nodes {
			cpu1, cerr := cpuSeconds(nd.pid())
			if cerr != nil {
				return errors.Join(err, fmt.Errorf("CPU of %s: %w", nd.name, cerr))
			}
			fig[nodeCPU(i)] = 100 * (cpu1 - cpu0[i]) / elapsed
			sum += cpu1 - cpu0[i]
		}
		fig[clCPUPerM] = sum / float64(s.Consumed) * 1e6
	}
	return err
}

// nodeCPU names the figure of node i's (0-based) CPU over the run across
// nodes, in percent of one core.
func nodeCPU(i int) string {
	role := [...]string{"home", "publisher's", "consumer's"}[i]
	return fmt.Sprintf("node %d (%s): CPU %% of one core", i+1, role)
}

// homeFailure declares a queue on a node that is not the raft leader (its
// home), consumes from it on another node, and kills the home with
// SIGKILL: it records when the consumer's node shows the home down and
// when the consumer gets basic.cancel (or its channel closes), each
// within sz.cancelWait.
func homeFailure(cl *warrenCluster, sz clusterSizes, fig map[string]float64) error {
	leader, err := cl.leader()
	if err != nil {
		return err
	}
	var others []int
	for i := range cl.nodes {
		if i != leader {
			others = append(others, i)
		}
	}
	home, at := cl.nodes[others[0]], cl.nodes[others[1]]
	q := "warren-perf-home-" + randomID()

	hconn, hch, err := dialChannel(home.uri, "home")
	if err != nil {
		return err
	}
	defer hconn.Close()
	if _, err := hch.QueueDeclare(q, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare %s on %s: %w", q, home.name, err)
	}
	conn, ch, err := dialChannel(at.uri, "consumer")
	if err != nil {
		return err
	}
	defer conn.Close()
	cancels := ch.NotifyCancel(make(chan string, 1))
	closed := ch.NotifyClose(make(chan *rmq.Error, 1))
	deliveries, err := ch.Consume(q, "", true, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume %s on %s: %w", q, at.name, err)
	}
	// Does a message published at the home reach the consumer? Only when
	// the queue is forwarded between nodes.
	if err := hch.PublishWithContext(context.Background(), "", q, false, false, rmq.Publishing{Body: []byte("before the kill")}); err != nil {
		return fmt.Errorf("publish on %s: %w", home.name, err)
	}
	fig[clForwardedBefore] = 0
	select {
	case _, ok := <-deliveries:
		if ok {
			fig[clForwardedBefore] = 1
		}
	case <-time.After(2 * time.Second):
	}

	start := time.Now()
	deadline := start.Add(sz.cancelWait)
	down := make(chan float64, 1)
	go func() { down <- waitShownDown(at, home.name, start, deadline) }()
	home.kill()
	fig[clCancelWait] = sz.cancelWait.Seconds() // the part ran
	wait := time.NewTimer(time.Until(deadline))
	defer wait.Stop()
	select {
	case <-cancels:
		fig[clCancel] = time.Since(start).Seconds()
	case <-closed:
		fig[clChannelClosed] = time.Since(start).Seconds()
	case <-wait.C:
	}
	if s := <-down; s > 0 {
		fig[clShownDown] = s
	}
	return nil
}

// waitShownDown polls at's /api/nodes until it lists name as not running,
// and returns the seconds since start, or 0 at the deadline.
func waitShownDown(at *clusterNode, name string, start, deadline time.Time) float64 {
	for time.Now().Before(deadline) {
		if ms, err := at.members(); err == nil {
			for _, m := range ms {
				if m.Name == name && !m.Running {
					return time.Since(start).Seconds()
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0
}

// leaderFailover declares a durable queue on a follower, kills the raft
// leader with SIGKILL, and declares durable queues on that follower one
// after another, each on a new connection, until one succeeds or
// sz.failoverWait passes.
func leaderFailover(cl *warrenCluster, sz clusterSizes, fig map[string]float64) error {
	leader, err := cl.leader()
	if err != nil {
		return err
	}
	at := cl.nodes[(leader+1)%len(cl.nodes)]
	id := randomID()
	declare := func(i int, timeout time.Duration) error {
		ch, stop, err := metaConn(at.uri, timeout) // no call outlives the timeout
		if err != nil {
			return err
		}
		defer stop()
		_, err = ch.QueueDeclare(fmt.Sprintf("warren-perf-failover-%s-%d", id, i), true, false, false, false, nil)
		return err
	}
	if err := declare(0, time.Minute); err != nil {
		return fmt.Errorf("declare on %s before the kill: %w", at.name, err)
	}
	start := time.Now()
	deadline := start.Add(sz.failoverWait)
	cl.nodes[leader].kill()
	fig[clFailoverWait] = sz.failoverWait.Seconds() // the part ran
	refused := 0
	for i := 1; time.Now().Before(deadline); i++ {
		err := declare(i, time.Until(deadline))
		if err == nil {
			fig[clFailover] = time.Since(start).Seconds()
			break
		}
		var amqpErr *rmq.Error
		if errors.As(err, &amqpErr) {
			refused++
			if refused == 1 {
				fig[clRefusedCode] = float64(amqpErr.Code)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	fig[clRefused] = float64(refused)
	return nil
}
