package main

import (
	"os"
	"testing"
)

// TestSettingsFromFlagsThenEnvironment checks the precedence of settings:
// flags, then WARREN_* variables, then defaults.
func TestSettingsFromFlagsThenEnvironment(t *testing.T) {
	for _, k := range []string{"AMQP_LISTEN", "MGMT_LISTEN", "DATA_DIR", "LOG_LEVEL"} {
		t.Setenv("WARREN_"+k, "") // restored when the test ends
		os.Unsetenv("WARREN_" + k)
	}
	o, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.amqpListen != ":5672" || o.mgmtListen != ":15672" || o.dataDir != "./data" || o.logLevel != "info" {
		t.Fatalf("defaults = %+v", o)
	}

	t.Setenv("WARREN_AMQP_LISTEN", "127.0.0.1:5673")
	t.Setenv("WARREN_MGMT_LISTEN", "127.0.0.1:15673")
	t.Setenv("WARREN_DATA_DIR", "/var/lib/warren")
	t.Setenv("WARREN_LOG_LEVEL", "debug")
	if o, err = parseFlags(nil); err != nil {
		t.Fatal(err)
	}
	if o.amqpListen != "127.0.0.1:5673" || o.mgmtListen != "127.0.0.1:15673" || o.dataDir != "/var/lib/warren" || o.logLevel != "debug" {
		t.Fatalf("from the environment = %+v", o)
	}

	if o, err = parseFlags([]string{"--amqp-listen", ":6000", "--mgmt-listen", "", "--data-dir", "d", "--log-level", "warn"}); err != nil {
		t.Fatal(err)
	}
	if o.amqpListen != ":6000" || o.mgmtListen != "" || o.dataDir != "d" || o.logLevel != "warn" {
		t.Fatalf("flags over the environment = %+v", o)
	}

	if err := run([]string{"--log-level", "loud"}); err == nil {
		t.Fatal("an invalid --log-level was accepted")
	}
}

// TestClusterSettings checks the cluster flags and their variables: off
// by default, the node named warren@<hostname>.
func TestClusterSettings(t *testing.T) {
	for _, k := range []string{"NODE_NAME", "CLUSTER_LISTEN", "CLUSTER_JOIN"} {
		t.Setenv("WARREN_"+k, "")
		os.Unsetenv("WARREN_" + k)
	}
	o, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if o.clusterListen != "" || o.clusterJoin != "" || o.nodeName != "warren@"+host {
		t.Fatalf("defaults = %+v", o)
	}
	t.Setenv("WARREN_NODE_NAME", "warren@n1")
	t.Setenv("WARREN_CLUSTER_LISTEN", "127.0.0.11:7946")
	t.Setenv("WARREN_CLUSTER_JOIN", "127.0.0.12:7946,127.0.0.13:7946")
	if o, err = parseFlags([]string{"--node-name", "warren@n9"}); err != nil {
		t.Fatal(err)
	}
	if o.nodeName != "warren@n9" || o.clusterListen != "127.0.0.11:7946" || o.clusterJoin != "127.0.0.12:7946,127.0.0.13:7946" {
		t.Fatalf("from the environment and flags = %+v", o)
	}
	node, err := newClusterNode(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	node.Close()
	o.clusterListen = "127.0.0.11:65535"
	if _, err := newClusterNode(o, nil); err == nil {
		t.Fatal("a gossip port without a next port was accepted")
	}
}
