package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"
)

// nodeInfo is the part of an /api/nodes object that cluster status
// prints; Raft is Warren's (absent from RabbitMQ and standalone nodes).
type nodeInfo struct {
	Name    string  `json:"name"`
	Running bool    `json:"running"`
	Uptime  *int64  `json:"uptime"`
	MemUsed *uint64 `json:"mem_used"`
	Raft    *struct {
		Suffrage     string  `json:"suffrage"`
		Leader       bool    `json:"leader"`
		State        string  `json:"state"`
		AppliedIndex *uint64 `json:"applied_index"`
	} `json:"raft"`
}

// cluster runs "cluster status" and "cluster forget NODE".
func (c command) cluster(args []string) error {
	switch {
	case len(args) == 1 && args[0] == "status":
		return c.clusterStatus()
	case len(args) == 2 && args[0] == "forget":
		if _, err := c.c.do(http.MethodDelete, "/nodes/"+esc(args[1]), nil); err != nil {
			return fmt.Errorf("forget %s: %w", args[1], err)
		}
		fmt.Fprintf(c.out, "%s forgotten\n", args[1])
		return nil
	}
	return errors.New("usage: warrenctl cluster status | cluster forget NODE")
}

// clusterStatus prints the cluster's name and leader, then one line per
// member: whether it runs, votes and leads, and what it reports of
// itself (its raft state, how far it applied the metadata log, its
// uptime and memory); "-" where a node that is down could not say.
func (c command) clusterStatus() error {
	var overview struct {
		ClusterName string `json:"cluster_name"`
		Node        string `json:"node"`
	}
	b, err := c.c.do(http.MethodGet, "/overview", nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &overview); err != nil {
		return fmt.Errorf("decode /overview: %w", err)
	}
	if b, err = c.c.do(http.MethodGet, "/nodes", nil); err != nil {
		return err
	}
	var nodes []nodeInfo
	if err := json.Unmarshal(b, &nodes); err != nil {
		return fmt.Errorf("decode /nodes: %w", err)
	}
	leader, clustered := "none", false
	for _, n := range nodes {
		if n.Raft != nil {
			clustered = true
			if n.Raft.Leader {
				leader = n.Name
			}
		}
	}
	if !clustered {
		fmt.Fprintf(c.out, "Standalone node %s (not a cluster member)\n", overview.Node)
	} else {
		fmt.Fprintf(c.out, "Cluster %s, %d members, leader %s (asked %s)\n", overview.ClusterName, len(nodes), leader, overview.Node)
	}
	tw := tabwriter.NewWriter(c.out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tRUNNING\tVOTER\tLEADER\tSTATE\tAPPLIED\tUPTIME\tMEMORY")
	for _, n := range nodes {
		row := []string{n.Name, yesNo(n.Running), "-", "-", "-", "-", "-", "-"}
		if r := n.Raft; r != nil {
			row[2] = map[string]string{"voter": "yes", "nonvoter": "no", "joining": "joining"}[r.Suffrage]
			row[3] = yesNo(r.Leader)
			if r.State != "" {
				row[4] = r.State
			}
			if r.AppliedIndex != nil {
				row[5] = fmt.Sprint(*r.AppliedIndex)
			}
		}
		if !n.Running {
			row[4] = "down"
		}
		if n.Uptime != nil {
			row[6] = (time.Duration(*n.Uptime) * time.Millisecond).Round(time.Second).String()
		}
		if n.MemUsed != nil {
			row[7] = fmt.Sprintf("%d MiB", *n.MemUsed>>20)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
