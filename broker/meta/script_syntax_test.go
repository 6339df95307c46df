package meta

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/exchange"
)

// The syntax of the scripts under testdata/ (see testdata/README.md): a
// command is a name followed by words and key=value pairs. A word or a
// value is bare (up to the next space), a Go string literal ("a b"), or,
// for values, a bracketed {…} or […] (spaces allowed inside).

// scriptArgs is a tokenised command line. Handlers take what they know;
// done reports anything left over, so that a typo fails loudly.
type scriptArgs struct {
	cmd   string
	words []string
	kv    map[string]string
	order []string // keys in the order given
	used  map[string]bool
	nword int // words taken
}

func tokenize(line string) (*scriptArgs, error) {
	a := &scriptArgs{kv: map[string]string{}, used: map[string]bool{}}
	s := strings.TrimSpace(line)
	for s != "" {
		var tok string
		var err error
		if s[0] == '"' {
			tok, s, err = scanQuoted(s)
			if err != nil {
				return nil, err
			}
			a.words = append(a.words, tok)
		} else {
			end := strings.IndexAny(s, " \t=")
			if end >= 0 && s[end] == '=' {
				key := s[:end]
				var val string
				if val, s, err = scanValue(s[end+1:]); err != nil {
					return nil, fmt.Errorf("%s: %w", key, err)
				}
				if _, dup := a.kv[key]; dup {
					return nil, fmt.Errorf("%s given twice", key)
				}
				a.kv[key] = val
				a.order = append(a.order, key)
			} else {
				if end < 0 {
					end = len(s)
				}
				a.words = append(a.words, s[:end])
				s = s[end:]
			}
		}
		s = strings.TrimLeft(s, " \t")
	}
	if len(a.words) == 0 {
		return nil, fmt.Errorf("empty command")
	}
	a.cmd, a.words = a.words[0], a.words[1:]
	return a, nil
}

// scanQuoted reads a Go string literal at the start of s.
func scanQuoted(s string) (val, rest string, err error) {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			v, err := strconv.Unquote(s[:i+1])
			return v, s[i+1:], err
		}
	}
	return "", "", fmt.Errorf("unterminated string %s", s)
}

// scanValue reads a value at the start of s: quoted, bracketed or bare.
func scanValue(s string) (val, rest string, err error) {
	if s == "" {
		return "", "", nil
	}
	switch s[0] {
	case '"':
		return scanQuoted(s)
	case '{', '[':
		depth := 0
		for i := 0; i < len(s); i++ {
			switch s[i] {
			case '"':
				_, r, err := scanQuoted(s[i:])
				if err != nil {
					return "", "", err
				}
				i = len(s) - len(r) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return s[:i+1], s[i+1:], nil
				}
			}
		}
		return "", "", fmt.Errorf("unbalanced %s", s)
	}
	end := strings.IndexAny(s, " \t")
	if end < 0 {
		end = len(s)
	}
	return s[:end], s[end:], nil
}

// word takes the next word, or reports that it is missing.
func (a *scriptArgs) word(what string) (string, error) {
	if a.nword >= len(a.words) {
		return "", fmt.Errorf("%s: missing %s", a.cmd, what)
	}
	a.nword++
	return a.words[a.nword-1], nil
}

// flag takes the word name if it is there.
func (a *scriptArgs) flag(name string) bool {
	for i := a.nword; i < len(a.words); i++ {
		if a.words[i] == name {
			a.words = append(a.words[:i:i], a.words[i+1:]...)
			return true
		}
	}
	return false
}

// get takes key's value, or def.
func (a *scriptArgs) get(key, def string) string {
	if v, ok := a.kv[key]; ok {
		a.used[key] = true
		return v
	}
	return def
}

// must takes key's value, which must be given.
func (a *scriptArgs) must(key string) (string, error) {
	v, ok := a.kv[key]
	if !ok {
		return "", fmt.Errorf("%s: missing %s=", a.cmd, key)
	}
	a.used[key] = true
	return v, nil
}

// vhost is the vhost= value; "/" when not given.
func (a *scriptArgs) vhost() string { return a.get("vhost", "/") }

func (a *scriptArgs) table(key string) (amqp.Table, error) {
	v, ok := a.kv[key]
	if !ok {
		return nil, nil
	}
	a.used[key] = true
	return parseTable(v)
}

func (a *scriptArgs) done() error {
	if a.nword < len(a.words) {
		return fmt.Errorf("%s: unexpected %q", a.cmd, a.words[a.nword:])
	}
	for _, k := range a.order {
		if !a.used[k] {
			return fmt.Errorf("%s: unexpected %s=", a.cmd, k)
		}
	}
	return nil
}

// parseOp parses the command of input[0]; a batch takes the indented
// lines after it as its ops.
func parseOp(input []string) (Op, error) {
	a, err := tokenize(input[0])
	if err != nil {
		return nil, err
	}
	if a.cmd == "batch" {
		if err := a.done(); err != nil {
			return nil, err
		}
		b := Batch{}
		for _, l := range input[1:] {
			if l == strings.TrimLeft(l, " \t") {
				return nil, fmt.Errorf("batch: op %q is not indented", l)
			}
			op, err := parseOp([]string{strings.TrimSpace(l)})
			if err != nil {
				return nil, err
			}
			b.Ops = append(b.Ops, op)
		}
		return b, nil
	}
	if len(input) > 1 {
		return nil, fmt.Errorf("%s takes one line", a.cmd)
	}
	op, err := parseSingleOp(a)
	if err != nil {
		return nil, err
	}
	return op, a.done()
}

func parseSingleOp(a *scriptArgs) (Op, error) {
	switch a.cmd {
	case "add-vhost", "delete-vhost", "delete-user":
		name, err := a.word("name")
		if err != nil {
			return nil, err
		}
		switch a.cmd {
		case "add-vhost":
			return AddVhost{Name: name}, nil
		case "delete-vhost":
			return DeleteVhost{Name: name}, nil
		}
		return DeleteUser{Name: name}, nil
	case "put-user":
		name, err := a.word("name")
		if err != nil {
			return nil, err
		}
		u := User{Name: name, PasswordHash: a.get("hash", "")}
		if tags := a.get("tags", ""); tags != "" {
			u.Tags = strings.Split(tags, ",")
		}
		return PutUser{User: u}, nil
	case "set-permission":
		user, err := a.must("user")
		if err != nil {
			return nil, err
		}
		return SetPermission{Permission: Permission{User: user, Vhost: a.vhost(),
			Configure: a.get("configure", ".*"), Write: a.get("write", ".*"), Read: a.get("read", ".*")}}, nil
	case "clear-permission":
		user, err := a.must("user")
		if err != nil {
			return nil, err
		}
		return ClearPermission{User: user, Vhost: a.vhost()}, nil
	case "put-policy":
		p := Policy{Vhost: a.vhost(), Name: a.get("name", ""), Pattern: a.get("pattern", ""), ApplyTo: a.get("apply-to", "")}
		if prio := a.get("priority", ""); prio != "" {
			n, err := strconv.Atoi(prio)
			if err != nil {
				return nil, fmt.Errorf("priority: %w", err)
			}
			p.Priority = n
		}
		def, err := a.must("definition")
		if err != nil {
			return nil, err
		}
		// As the management API and a definitions file give it: JSON
		// decoded by encoding/json (numbers are float64).
		if err := json.Unmarshal([]byte(def), &p.Definition); err != nil {
			return nil, fmt.Errorf("definition: %w", err)
		}
		return PutPolicy{Policy: p}, nil
	case "delete-policy":
		name, err := a.must("name")
		if err != nil {
			return nil, err
		}
		return DeletePolicy{Vhost: a.vhost(), Name: name}, nil
	case "declare-exchange":
		e := Exchange{Vhost: a.vhost(), Name: a.get("name", ""), Type: a.get("type", "direct"),
			Durable: a.flag("durable"), AutoDelete: a.flag("auto-delete"), Internal: a.flag("internal")}
		var err error
		e.Args, err = a.table("args")
		return DeclareExchange{Exchange: e}, err
	case "delete-exchange":
		return DeleteExchange{Vhost: a.vhost(), Name: a.get("name", ""), IfUnused: a.flag("if-unused")}, nil
	case "declare-queue":
		q := Queue{Vhost: a.vhost(), Name: a.get("name", ""), Durable: a.flag("durable"), AutoDelete: a.flag("auto-delete"), Node: a.get("node", "")}
		serverNamed := a.flag("server-named")
		var err error
		q.Args, err = a.table("args")
		return DeclareQueue{Queue: q, ServerNamed: serverNamed}, err
	case "delete-queue":
		return DeleteQueue{Vhost: a.vhost(), Name: a.get("name", "")}, nil
	case "bind", "unbind":
		b := Binding{Vhost: a.vhost()}
		b.Source = a.get("source", "")
		q, isQueue := a.kv["queue"]
		e, isExchange := a.kv["exchange"]
		switch {
		case isQueue == isExchange:
			return nil, fmt.Errorf("%s: give one of queue= and exchange=", a.cmd)
		case isQueue:
			a.used["queue"] = true
			b.Destination = exchange.Destination{Name: q}
		default:
			a.used["exchange"] = true
			b.Destination = exchange.Destination{Name: e, IsExchange: true}
		}
		b.Key = a.get("key", "")
		var err error
		if b.Args, err = a.table("args"); err != nil {
			return nil, err
		}
		if a.cmd == "bind" {
			return Bind{Binding: b}, nil
		}
		return Unbind{Binding: b}, nil
	}
	return nil, fmt.Errorf("unknown command %q", a.cmd)
}

// renderRecord shows a record in the syntax of the command that makes it.
func renderRecord(r Record) string {
	var b strings.Builder
	kv := func(k, v string) {
		b.WriteString(" " + k + "=" + quoteValue(v))
	}
	word := func(w string, on bool) {
		if on {
			b.WriteString(" " + w)
		}
	}
	b.WriteString(r.Kind().String())
	switch r := r.(type) {
	case *Vhost:
		b.WriteString(" " + quoteValue(r.Name))
	case *User:
		b.WriteString(" " + quoteValue(r.Name))
		if r.PasswordHash != "" {
			kv("hash", r.PasswordHash)
		}
		if len(r.Tags) > 0 {
			kv("tags", strings.Join(r.Tags, ","))
		}
	case *Permission:
		kv("user", r.User)
		kv("vhost", r.Vhost)
		kv("configure", r.Configure)
		kv("write", r.Write)
		kv("read", r.Read)
	case *Policy:
		kv("vhost", r.Vhost)
		kv("name", r.Name)
		kv("pattern", r.Pattern)
		kv("apply-to", r.ApplyTo)
		kv("priority", strconv.Itoa(r.Priority))
		def, err := json.Marshal(r.Definition)
		if err != nil {
			def = []byte(err.Error())
		}
		kv("definition", string(def))
	case *Exchange:
		kv("vhost", r.Vhost)
		kv("name", r.Name)
		kv("type", r.Type)
		word("durable", r.Durable)
		word("auto-delete", r.AutoDelete)
		word("internal", r.Internal)
		if len(r.Args) > 0 {
			b.WriteString(" args=" + renderTable(r.Args))
		}
	case *Queue:
		kv("vhost", r.Vhost)
		kv("name", r.Name)
		word("durable", r.Durable)
		word("auto-delete", r.AutoDelete)
		if len(r.Args) > 0 {
			b.WriteString(" args=" + renderTable(r.Args))
		}
		if r.Node != "" {
			kv("node", r.Node)
		}
	case *Binding:
		kv("vhost", r.Vhost)
		kv("source", r.Source)
		if r.Destination.IsExchange {
			kv("exchange", r.Destination.Name)
		} else {
			kv("queue", r.Destination.Name)
		}
		if r.Key != "" {
			kv("key", r.Key)
		}
		if len(r.Args) > 0 {
			b.WriteString(" args=" + renderTable(r.Args))
		}
	}
	return b.String()
}

// quoteValue quotes a value that would not read back bare.
func quoteValue(v string) string {
	if v == "" {
		return `""`
	}
	if v[0] == '{' || v[0] == '[' {
		// A bracketed value (JSON) reads back bare if it is balanced.
		if got, rest, err := scanValue(v); err == nil && got == v && rest == "" {
			return v
		}
		return strconv.Quote(v)
	}
	if v[0] == '"' || strings.ContainsAny(v, " \t") {
		return strconv.Quote(v)
	}
	for _, r := range v {
		if !strconv.IsPrint(r) {
			return strconv.Quote(v)
		}
	}
	return v
}

// Field tables in scripts: {key:value,…}. A value is a table, an array
// […], true, false, null (void), a Go string literal, a number or a bare
// word (a string). Numbers are typed as on the wire: 10 is a signedint
// (int32), 10L a long (int64), 10b a byte (int8), 10B an unsignedbyte,
// 10s a short (int16), 10u an unsignedshort, 10U an unsignedint; 1.5 is a
// double and 1.5f a float.

func parseTable(s string) (amqp.Table, error) {
	p := &tableParser{s: s}
	v, err := p.value()
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", s, err)
	}
	t, ok := v.(amqp.Table)
	if !ok || p.s != "" {
		return nil, fmt.Errorf("table %s: not one {…}", s)
	}
	return t, nil
}

type tableParser struct{ s string }

func (p *tableParser) skip() { p.s = strings.TrimLeft(p.s, " \t") }

func (p *tableParser) value() (any, error) {
	p.skip()
	if p.s == "" {
		return nil, fmt.Errorf("missing value")
	}
	switch p.s[0] {
	case '{':
		t := amqp.Table{}
		p.s = p.s[1:]
		for {
			p.skip()
			if strings.HasPrefix(p.s, "}") {
				p.s = p.s[1:]
				return t, nil
			}
			k, err := p.atom()
			if err != nil {
				return nil, err
			}
			key, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("key %v is not a string", k)
			}
			p.skip()
			if !strings.HasPrefix(p.s, ":") {
				return nil, fmt.Errorf("missing : after %s", key)
			}
			p.s = p.s[1:]
			if t[key], err = p.value(); err != nil {
				return nil, err
			}
			p.skip()
			p.s = strings.TrimPrefix(p.s, ",")
		}
	case '[':
		arr := []any{}
		p.s = p.s[1:]
		for {
			p.skip()
			if strings.HasPrefix(p.s, "]") {
				p.s = p.s[1:]
				return arr, nil
			}
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
			p.skip()
			p.s = strings.TrimPrefix(p.s, ",")
		}
	}
	return p.atom()
}

// atom reads a quoted string or a bare word and types the word.
func (p *tableParser) atom() (any, error) {
	if p.s[0] == '"' {
		v, rest, err := scanQuoted(p.s)
		p.s = rest
		return v, err
	}
	end := strings.IndexAny(p.s, ",:{}[] \t")
	if end < 0 {
		end = len(p.s)
	}
	w := p.s[:end]
	p.s = p.s[end:]
	if w == "" {
		return nil, fmt.Errorf("missing value at %q", p.s)
	}
	switch w {
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "null":
		return nil, nil
	}
	return typedNumber(w), nil
}

// typedNumber reads w as a typed number, or returns it as a string.
func typedNumber(w string) any {
	num, suffix := w, byte(0)
	if last := w[len(w)-1]; strings.IndexByte("bBsuUlLf", last) >= 0 {
		num, suffix = w[:len(w)-1], last
	}
	if strings.Contains(num, ".") {
		bits := 64
		if suffix == 'f' {
			bits = 32
		} else if suffix != 0 {
			return w
		}
		f, err := strconv.ParseFloat(num, bits)
		if err != nil {
			return w
		}
		if bits == 32 {
			return float32(f)
		}
		return f
	}
	sizes := map[byte]struct {
		bits     int
		unsigned bool
	}{0: {32, false}, 'L': {64, false}, 'b': {8, false}, 'B': {8, true}, 's': {16, false}, 'u': {16, true}, 'U': {32, true}}
	sz, ok := sizes[suffix]
	if !ok {
		return w
	}
	if sz.unsigned {
		n, err := strconv.ParseUint(num, 10, sz.bits)
		if err != nil {
			return w
		}
		switch sz.bits {
		case 8:
			return uint8(n)
		case 16:
			return uint16(n)
		}
		return uint32(n)
	}
	n, err := strconv.ParseInt(num, 10, sz.bits)
	if err != nil {
		return w
	}
	switch sz.bits {
	case 8:
		return int8(n)
	case 16:
		return int16(n)
	case 32:
		return int32(n)
	}
	return n
}

func renderTable(t amqp.Table) string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = renderAtom(k) + ":" + renderValue(t[k])
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func renderValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(v)
	case string:
		return renderAtom(v)
	case int8:
		return fmt.Sprintf("%db", v)
	case uint8:
		return fmt.Sprintf("%dB", v)
	case int16:
		return fmt.Sprintf("%ds", v)
	case uint16:
		return fmt.Sprintf("%du", v)
	case int32:
		return strconv.Itoa(int(v))
	case uint32:
		return fmt.Sprintf("%dU", v)
	case int64:
		return fmt.Sprintf("%dL", v)
	case float64:
		return floatText(v, 64)
	case float32:
		return floatText(float64(v), 32) + "f"
	case amqp.Table:
		return renderTable(v)
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = renderValue(e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case []byte:
		return fmt.Sprintf("binary(%q)", v)
	case time.Time:
		return fmt.Sprintf("timestamp(%d)", v.Unix())
	}
	return fmt.Sprintf("%T(%v)", v, v)
}

func floatText(f float64, bits int) string {
	s := strconv.FormatFloat(f, 'f', -1, bits)
	if !strings.Contains(s, ".") && !math.IsInf(f, 0) && !math.IsNaN(f) {
		s += ".0"
	}
	return s
}

// renderAtom shows a string bare if it reads back as the same string.
func renderAtom(s string) string {
	if s != "" && !strings.ContainsAny(s, ",:{}[] \t\"\\") {
		if _, isString := typedNumber(s).(string); isString && s != "true" && s != "false" && s != "null" {
			return s
		}
	}
	return strconv.Quote(s)
}
