package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// clusterNode is one warren process of a cluster that warren-perf started.
type clusterNode struct {
	name string // --node-name
	uri  string // AMQP URL, guest
	mgmt string // host:port of the management API
	log  string // path of the process's log
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// warrenCluster is n warren processes clustered on loopback, each with a
// data dir of its own under dir.
type warrenCluster struct {
	nodes []*clusterNode
	dir   string
}

// clusterStartTimeout bounds a node's start and the cluster's formation.
const clusterStartTimeout = time.Minute

// startCluster runs n warren processes of bin on free loopback ports:
// node 1 founds the cluster, every other node joins the ones before it.
// It returns once node 1's management API lists n running voters. A port
// found free can be taken by another program before a node binds it;
// then the cluster starts again on other ports, up to three times.
func startCluster(bin string, n int) (*warrenCluster, error) {
	var err error
	for range 3 {
		var c *warrenCluster
		if c, err = tryStartCluster(bin, n); err == nil {
			return c, nil
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, err
}

// tryStartCluster is one attempt of startCluster.
func tryStartCluster(bin string, n int) (*warrenCluster, error) {
	dir, err := os.MkdirTemp("", "warren-perf-cluster")
	if err != nil {
		return nil, fmt.Errorf("cluster dir: %w", err)
	}
	c := &warrenCluster{dir: dir}
	var seeds []string
	for i := 1; i <= n; i++ {
		nd, gossip, err := c.startNode(bin, i, seeds)
		if err != nil {
			c.stop()
			return nil, err
		}
		c.nodes = append(c.nodes, nd)
		seeds = append(seeds, gossip)
	}
	for _, nd := range c.nodes {
		if err := nd.waitReady(clusterStartTimeout); err != nil {
			c.stop()
			return nil, err
		}
	}
	if err := c.waitFormed(clusterStartTimeout); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// startNode starts node i (1-based) with seeds to join.
func (c *warrenCluster) startNode(bin string, i int, seeds []string) (*clusterNode, string, error) {
	// Hold the AMQP and management ports while the gossip port is found,
	// so that it cannot be one of them.
	amqpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("find a port: %w", err)
	}
	defer amqpLn.Close()
	mgmtLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("find a port: %w", err)
	}
	defer mgmtLn.Close()
	gossip, err := freeClusterPort()
	if err != nil {
		return nil, "", err
	}
	amqpPort, mgmtPort := amqpLn.Addr().(*net.TCPAddr).Port, mgmtLn.Addr().(*net.TCPAddr).Port
	amqpLn.Close()
	mgmtLn.Close()
	addr := "127.0.0.1:" + strconv.Itoa(amqpPort)
	nd := &clusterNode{
		name: fmt.Sprintf("warren-perf-%d@localhost", i),
		uri:  "amqp://guest:guest@" + addr + "/",
		mgmt: "127.0.0.1:" + strconv.Itoa(mgmtPort),
		log:  filepath.Join(c.dir, fmt.Sprintf("node%d.log", i)),
		done: make(chan struct{}),
	}
	args := []string{"--node-name", nd.name, "--amqp-listen", addr, "--mgmt-listen", nd.mgmt,
		"--data-dir", filepath.Join(c.dir, fmt.Sprintf("node%d", i)), "--log-level", "warn", "--cluster-listen", gossip}
	if len(seeds) > 0 {
		args = append(args, "--cluster-join", strings.Join(seeds, ","))
	}
	logf, err := os.Create(nd.log)
	if err != nil {
		return nil, "", fmt.Errorf("node %d log: %w", i, err)
	}
	nd.cmd = exec.Command(bin, args...)
	nd.cmd.Stdout, nd.cmd.Stderr = logf, logf
	// Never leave a node behind warren-perf, however it ends.
	nd.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := nd.cmd.Start(); err != nil {
		logf.Close()
		return nil, "", fmt.Errorf("start node %d: %w", i, err)
	}
	go func() {
		nd.cmd.Wait()
		logf.Close()
		close(nd.done)
	}()
	return nd, gossip, nil
}

// freeClusterPort returns a loopback host:port free for gossip (TCP and
// UDP) whose next port is free for inter-node traffic.
func freeClusterPort() (string, error) {
	for range 100 {
		tl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("find a cluster port: %w", err)
		}
		port := tl.Addr().(*net.TCPAddr).Port
		ul, uerr := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		nl, nerr := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+1)))
		tl.Close()
		if uerr == nil {
			ul.Close()
		}
		if nerr == nil {
			nl.Close()
		}
		if uerr == nil && nerr == nil {
			return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
		}
	}
	return "", errors.New("no free cluster port on loopback")
}

// exited reports whether the node's process has ended.
func (nd *clusterNode) exited() bool {
	select {
	case <-nd.done:
		return true
	default:
		return false
	}
}

// pid is the node's process id.
func (nd *clusterNode) pid() int { return nd.cmd.Process.Pid }

// logTail returns the end of the node's log, for errors.
func (nd *clusterNode) logTail() string {
	b, _ := os.ReadFile(nd.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// waitReady waits until guest logs in to the node (a joining node has the
// user once it has the cluster's metadata).
func (nd *clusterNode) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := rmq.Dial(nd.uri)
		if err == nil {
			c.Close()
			return nil
		}
		if nd.exited() {
			return fmt.Errorf("%s exited at start; its log ends with:\n%s", nd.name, nd.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %s: %w", nd.name, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// member is a node as /api/nodes lists it.
type member struct {
	Name    string `json:"name"`
	Running bool   `json:"running"`
	Raft    struct {
		Suffrage string `json:"suffrage"`
		Leader   bool   `json:"leader"`
	} `json:"raft"`
}

// apiClient bounds every management call of the cluster scenario.
var apiClient = &http.Client{Timeout: 5 * time.Second}

// members asks the node's management API for the cluster's members.
func (nd *clusterNode) members() ([]member, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+nd.mgmt+"/api/nodes", nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth("guest", "guest")
	resp, err := apiClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: /api/nodes: %w", nd.name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s: /api/nodes: %w", nd.name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: /api/nodes: status %d: %s", nd.name, resp.StatusCode, body)
	}
	var ms []member
	if err := json.Unmarshal(body, &ms); err != nil {
		return nil, fmt.Errorf("%s: /api/nodes: %w", nd.name, err)
	}
	return ms, nil
}

// waitFormed waits until node 1's API lists every node as a running
// voter and one of them as the leader.
func (c *warrenCluster) waitFormed(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		_, err := c.leader()
		if err == nil {
			return nil
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("the cluster did not form within %s: %w", timeout, last)
}

// leader returns the index of the raft leader in c.nodes, as node 1's API
// sees it, when every node is a running voter.
func (c *warrenCluster) leader() (int, error) {
	ms, err := c.nodes[0].members()
	if err != nil {
		return -1, err
	}
	voters, leader := 0, ""
	for _, m := range ms {
		if m.Running && m.Raft.Suffrage == "voter" {
			voters++
		}
		if m.Raft.Leader {
			leader = m.Name
		}
	}
	if voters != len(c.nodes) || leader == "" {
		return -1, fmt.Errorf("%d running voters of %d, leader %q", voters, len(c.nodes), leader)
	}
	for i, nd := range c.nodes {
		if nd.name == leader {
			return i, nil
		}
	}
	return -1, fmt.Errorf("leader %q is none of the cluster's nodes", leader)
}

// kill sends the node SIGKILL and waits until it has exited.
func (nd *clusterNode) kill() {
	nd.cmd.Process.Signal(syscall.SIGKILL)
	<-nd.done
}

// stop ends every node (SIGTERM, SIGKILL after 20 s) and removes the
// cluster's data.
func (c *warrenCluster) stop() {
	for _, nd := range c.nodes {
		if !nd.exited() {
			nd.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, nd := range c.nodes {
		select {
		case <-nd.done:
		case <-time.After(20 * time.Second):
			nd.kill()
		}
	}
	os.RemoveAll(c.dir)
}
