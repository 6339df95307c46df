package meta

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warrenmq/warren/amqp"
)

// The scripts under testdata/ state what the metadata state machine does,
// op by op, without a socket: each block is a command, a line "----" and
// the output it must give, ended by a blank line. Lines starting with '#'
// between blocks are comments. The syntax is described in
// testdata/README.md. Run with -rewrite to regenerate the outputs (then
// read the diff: the files are the specification).

var rewrite = flag.Bool("rewrite", false, "rewrite the expected outputs of testdata/*.txt")

func TestScripts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scripts under testdata/")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScriptFile(t, f) })
	}
}

// scriptBlock is one command of a script with its expected output.
type scriptBlock struct {
	line           int      // 1-based line of the command, for messages
	input          []string // the command line and its indented sub-commands
	outFrom, outTo int      // the expected output: lines [outFrom, outTo) of the file
}

// parseScript splits a script into its blocks.
func parseScript(lines []string) ([]scriptBlock, error) {
	var blocks []scriptBlock
	for i := 0; i < len(lines); {
		if l := lines[i]; strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			i++
			continue
		}
		b := scriptBlock{line: i + 1}
		for ; i < len(lines) && lines[i] != "----"; i++ {
			if strings.TrimSpace(lines[i]) == "" {
				return nil, fmt.Errorf("line %d: command without a ---- line", b.line)
			}
			b.input = append(b.input, lines[i])
		}
		if i == len(lines) {
			return nil, fmt.Errorf("line %d: command without a ---- line", b.line)
		}
		i++
		b.outFrom = i
		for i < len(lines) && lines[i] != "" {
			i++
		}
		b.outTo = i
		blocks = append(blocks, b)
	}
	return blocks, nil
}

func runScriptFile(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	blocks, err := parseScript(lines)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	h := &scriptHarness{t: t, s: NewState()}
	var out []string // the rewritten file
	last := 0
	for _, b := range blocks {
		h.where = fmt.Sprintf("%s:%d", path, b.line)
		got := h.run(b.input)
		want := strings.Join(lines[b.outFrom:b.outTo], "\n")
		if *rewrite {
			out = append(out, lines[last:b.outFrom]...)
			out = append(out, strings.Split(got, "\n")...)
			last = b.outTo
			continue
		}
		if got != want {
			t.Errorf("%s: %s\ngot:\n%s\nwant:\n%s", h.where, strings.Join(b.input, "\n"), got, want)
		}
	}
	if *rewrite {
		out = append(out, lines[last:]...)
		if err := os.WriteFile(path, []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// scriptHarness runs the commands of one script against one state.
type scriptHarness struct {
	t     *testing.T
	s     *State
	where string
}

// run runs one command and returns its output.
func (h *scriptHarness) run(input []string) string {
	args, err := tokenize(input[0])
	if err != nil {
		return "bad command: " + err.Error()
	}
	switch args.cmd {
	case "state":
		if err := args.done(); err != nil {
			return "bad command: " + err.Error()
		}
		return dumpState(h.s)
	case "restart":
		// What a restart keeps: the durable records only.
		if err := args.done(); err != nil {
			return "bad command: " + err.Error()
		}
		s, err := Restore(Snapshot(h.s, true))
		if err != nil {
			h.t.Fatalf("%s: restore the durable snapshot: %v", h.where, err)
		}
		h.s = s
		return dumpState(h.s)
	}
	op, err := parseOp(input)
	if err != nil {
		return "bad command: " + err.Error()
	}
	return h.runOp(op)
}

// runOp checks op and, if it passes, applies it, and returns the changes
// or the error. Along the way it checks the properties every op must have:
// Check changes nothing; the op survives its encoding; Apply makes the
// same changes on a clone, on a restored snapshot and with the decoded op;
// Undo restores the state exactly; the changes survive their encoding;
// replaying the durable changes on the durable state before the op gives
// the durable state after it; and a snapshot restores to the same bytes.
func (h *scriptHarness) runOp(op Op) string {
	t := h.t
	before := Snapshot(h.s, false)
	beforeDurable := Snapshot(h.s, true)
	err := h.s.Check(op)
	if !bytes.Equal(Snapshot(h.s, false), before) {
		t.Errorf("%s: Check changed the state", h.where)
	}
	if err != nil {
		return "error: " + errorText(err)
	}

	enc := AppendOp(nil, op)
	decoded, err := DecodeOp(enc)
	if err != nil {
		t.Fatalf("%s: decode %s: %v", h.where, op, err)
	}
	if re := AppendOp(nil, decoded); !bytes.Equal(re, enc) {
		t.Errorf("%s: %s encodes differently after a round trip", h.where, op)
	}

	clone := h.s.Clone()
	restored, err := Restore(before)
	if err != nil {
		t.Fatalf("%s: restore: %v", h.where, err)
	}
	cs := h.s.Apply(op)
	got := renderChanges(cs)
	if again := renderChanges(clone.Apply(decoded)); again != got {
		t.Errorf("%s: the decoded op on a clone made other changes:\n%s", h.where, again)
	}
	if again := restored.Apply(op); renderChanges(again) != got {
		t.Errorf("%s: the op on a restored snapshot made other changes:\n%s", h.where, renderChanges(again))
	} else {
		// Undo on a state of its own, so that h.s goes on.
		restored.Undo(again)
		if !bytes.Equal(Snapshot(restored, false), before) {
			t.Errorf("%s: Undo did not restore the state before the op", h.where)
		}
	}
	after := Snapshot(h.s, false)
	if !bytes.Equal(Snapshot(clone, false), after) {
		t.Errorf("%s: the op on a clone gave another state", h.where)
	}

	for _, c := range cs {
		switch r := c.Record.(type) {
		case *Exchange:
			if c.Durable != r.Durable {
				t.Errorf("%s: change of exchange %s durable=%v", h.where, r.Name, c.Durable)
			}
		case *Queue:
			if c.Durable != r.Durable {
				t.Errorf("%s: change of queue %s durable=%v", h.where, r.Name, c.Durable)
			}
		case *Binding:
		default:
			if !c.Durable {
				t.Errorf("%s: a %s change is not durable", h.where, r.Kind())
			}
		}
	}

	dcs, err := DecodeChanges(AppendChanges(nil, cs))
	if err != nil {
		t.Fatalf("%s: decode changes: %v", h.where, err)
	}
	if renderChangesBare(dcs) != renderChangesBare(cs) {
		t.Errorf("%s: changes differ after a round trip:\n%s", h.where, renderChangesBare(dcs))
	}

	// The single-node log keeps the durable changes only; replaying them
	// on the durable state before the op must give the durable state after.
	var durable []Change
	for _, c := range cs {
		if c.Durable {
			durable = append(durable, c)
		}
	}
	logged, err := DecodeChanges(AppendChanges(nil, durable))
	if err != nil {
		t.Fatalf("%s: decode changes: %v", h.where, err)
	}
	replayed, err := Restore(beforeDurable)
	if err != nil {
		t.Fatalf("%s: restore: %v", h.where, err)
	}
	if err := replayed.Replay(logged); err != nil {
		t.Errorf("%s: replay the logged changes: %v", h.where, err)
	} else if !bytes.Equal(Snapshot(replayed, false), Snapshot(h.s, true)) {
		t.Errorf("%s: replaying the logged changes gave:\n%s\nbut the durable state is:\n%s",
			h.where, dumpState(replayed), dumpDurable(h.s))
	}

	for _, durableOnly := range []bool{false, true} {
		snap := Snapshot(h.s, durableOnly)
		r, err := Restore(snap)
		if err != nil {
			t.Fatalf("%s: restore: %v", h.where, err)
		}
		if !bytes.Equal(Snapshot(r, durableOnly), snap) {
			t.Errorf("%s: Snapshot(Restore(Snapshot)) differs (durable only: %v)", h.where, durableOnly)
		}
	}
	return got
}

// errorText is an error as scripts show it: an *amqp.Error by its text
// ("NOT_FOUND - no vhost 'v'"), any other error (a batch's, which wraps
// the failing op's) as it prints.
func errorText(err error) string {
	if ae, ok := err.(*amqp.Error); ok {
		return ae.Text
	}
	var ae *amqp.Error
	if !errors.As(err, &ae) {
		return err.Error() + " (not an *amqp.Error)"
	}
	return err.Error()
}

// renderChanges shows one change a line: "put" or "del", the record and,
// for a change the store does not keep, "(transient)".
func renderChanges(cs []Change) string {
	if len(cs) == 0 {
		return "(no change)"
	}
	var b strings.Builder
	for i, c := range cs {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(renderChange(c))
		if !c.Durable {
			b.WriteString(" (transient)")
		}
	}
	return b.String()
}

// renderChangesBare is renderChanges without the durable flags, which the
// change encoding does not keep.
func renderChangesBare(cs []Change) string {
	lines := make([]string, len(cs))
	for i, c := range cs {
		lines[i] = renderChange(c)
	}
	return strings.Join(lines, "\n")
}

func renderChange(c Change) string {
	if c.Delete {
		return "del " + renderRecord(c.Record)
	}
	return "put " + renderRecord(c.Record)
}

func dumpState(s *State) string {
	var lines []string
	s.Each(func(r Record) { lines = append(lines, renderRecord(r)) })
	if len(lines) == 0 {
		return "(empty)"
	}
	return strings.Join(lines, "\n")
}

func dumpDurable(s *State) string {
	r, err := Restore(Snapshot(s, true))
	if err != nil {
		return err.Error()
	}
	return dumpState(r)
}
