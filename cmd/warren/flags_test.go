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
