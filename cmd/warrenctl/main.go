// Command warrenctl is a small admin CLI over Warren's management HTTP API
// (which is RabbitMQ's, so it also drives RabbitMQ).
//
//	warrenctl [--url U] [--user N] [--password P] [--vhost V] command ...
//
// Commands:
//
//	list queues|exchanges|bindings|connections|users|vhosts|policies
//	declare queue NAME [--durable=false] [--auto-delete] [--arguments JSON]
//	declare exchange NAME TYPE [--durable=false] [--auto-delete] [--internal]
//	declare binding SOURCE DESTINATION [ROUTING_KEY] [--to-exchange]
//	delete queue|exchange NAME
//	purge queue NAME
//	export FILE
//	import FILE
//	cluster status
//	cluster forget NODE
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "warrenctl:", err)
		os.Exit(1)
	}
}

// errUsage reports a command line warrenctl does not understand.
var errUsage = errors.New("usage: warrenctl [--url U] [--user N] [--password P] [--vhost V] list|declare|delete|purge|export|import|cluster ...")

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("warrenctl", flag.ContinueOnError)
	base := fs.String("url", envOr("WARREN_MGMT_URL", "http://localhost:15672"), "management API base URL")
	user := fs.String("user", envOr("WARREN_USER", "guest"), "user name")
	pass := fs.String("password", envOr("WARREN_PASSWORD", "guest"), "password")
	vhost := fs.String("vhost", "/", "virtual host")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return errUsage
	}
	c := newClient(*base, *user, *pass)
	cmd := command{c: c, vhost: *vhost, out: out}
	switch rest[0] {
	case "list":
		return cmd.list(rest[1:])
	case "declare":
		return cmd.declare(rest[1:])
	case "delete":
		return cmd.delete(rest[1:])
	case "purge":
		if len(rest) != 3 || rest[1] != "queue" {
			return errors.New("usage: warrenctl purge queue NAME")
		}
		_, err := c.do(http.MethodDelete, "/queues/"+esc(*vhost)+"/"+esc(rest[2])+"/contents", nil)
		return err
	case "export":
		if len(rest) != 2 {
			return errors.New("usage: warrenctl export FILE")
		}
		b, err := c.do(http.MethodGet, "/definitions", nil)
		if err != nil {
			return err
		}
		return os.WriteFile(rest[1], b, 0o644)
	case "import":
		if len(rest) != 2 {
			return errors.New("usage: warrenctl import FILE")
		}
		b, err := os.ReadFile(rest[1])
		if err != nil {
			return err
		}
		_, err = c.do(http.MethodPost, "/definitions", b)
		return err
	case "cluster":
		return cmd.cluster(rest[1:])
	}
	return errUsage
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// command runs one subcommand.
type command struct {
	c     *client
	vhost string
	out   io.Writer
}

// listColumns are the columns each listing prints.
var listColumns = map[string][]string{
	"queues":      {"vhost", "name", "messages", "messages_ready", "messages_unacknowledged", "consumers"},
	"exchanges":   {"vhost", "name", "type", "durable"},
	"bindings":    {"vhost", "source", "destination", "destination_type", "routing_key"},
	"connections": {"name", "node", "user", "vhost", "channels"},
	"users":       {"name", "tags"},
	"vhosts":      {"name", "messages"},
	"policies":    {"vhost", "name", "pattern", "apply-to", "priority", "definition"},
}

func (c command) list(args []string) error {
	if len(args) != 1 || listColumns[args[0]] == nil {
		kinds := make([]string, 0, len(listColumns))
		for k := range listColumns {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		return fmt.Errorf("usage: warrenctl list %s", strings.Join(kinds, "|"))
	}
	items, err := c.c.list("/" + args[0])
	if err != nil {
		return err
	}
	cols := listColumns[args[0]]
	tw := tabwriter.NewWriter(c.out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
	for _, it := range items {
		row := make([]string, len(cols))
		for i, col := range cols {
			row[i] = cell(it[col])
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// cell renders a JSON value for a table.
func cell(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		return fmt.Sprint(v)
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = cell(x)
		}
		return strings.Join(parts, ",")
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func (c command) declare(args []string) error {
	if len(args) < 2 {
		return errors.New("usage: warrenctl declare queue|exchange|binding ...")
	}
	fs := flag.NewFlagSet("declare", flag.ContinueOnError)
	durable := fs.Bool("durable", true, "durable")
	autoDelete := fs.Bool("auto-delete", false, "auto-delete")
	internal := fs.Bool("internal", false, "internal exchange")
	toExchange := fs.Bool("to-exchange", false, "bind to an exchange, not a queue")
	arguments := fs.String("arguments", "{}", "arguments as a JSON object")
	kind, pos, err := splitArgs(fs, args)
	if err != nil {
		return err
	}
	var argTable map[string]any
	if err := json.Unmarshal([]byte(*arguments), &argTable); err != nil {
		return fmt.Errorf("--arguments: %w", err)
	}
	v := esc(c.vhost)
	switch {
	case kind == "queue" && len(pos) == 1:
		_, err = c.c.do(http.MethodPut, "/queues/"+v+"/"+esc(pos[0]), map[string]any{"durable": *durable, "auto_delete": *autoDelete, "arguments": argTable})
	case kind == "exchange" && len(pos) == 2:
		_, err = c.c.do(http.MethodPut, "/exchanges/"+v+"/"+esc(pos[0]), map[string]any{"type": pos[1], "durable": *durable, "auto_delete": *autoDelete, "internal": *internal, "arguments": argTable})
	case kind == "binding" && (len(pos) == 2 || len(pos) == 3):
		key := ""
		if len(pos) == 3 {
			key = pos[2]
		}
		dest := "q"
		if *toExchange {
			dest = "e"
		}
		_, err = c.c.do(http.MethodPost, "/bindings/"+v+"/e/"+esc(pos[0])+"/"+dest+"/"+esc(pos[1]), map[string]any{"routing_key": key, "arguments": argTable})
	default:
		return errors.New("usage: warrenctl declare queue NAME | exchange NAME TYPE | binding SOURCE DESTINATION [KEY]")
	}
	return err
}

// splitArgs separates the kind, the positional arguments and the flags,
// which may come in any order.
func splitArgs(fs *flag.FlagSet, args []string) (kind string, pos []string, err error) {
	kind = args[0]
	rest := args[1:]
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			return "", nil, err
		}
		rest = fs.Args()
		if len(rest) > 0 {
			pos = append(pos, rest[0])
			rest = rest[1:]
		}
	}
	return kind, pos, nil
}

func (c command) delete(args []string) error {
	if len(args) != 2 || (args[0] != "queue" && args[0] != "exchange") {
		return errors.New("usage: warrenctl delete queue|exchange NAME")
	}
	_, err := c.c.do(http.MethodDelete, "/"+args[0]+"s/"+esc(c.vhost)+"/"+esc(args[1]), nil)
	return err
}
