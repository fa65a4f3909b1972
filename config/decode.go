package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

var (
	durationType = reflect.TypeFor[Duration]()
	configType   = reflect.TypeFor[Config]()
	varName      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	yamlLine     = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	backquoted   = regexp.MustCompile("`[^`]*`")
	flowVar      = regexp.MustCompile(`[\[{,]\s*\$\{|:\s+\$\{[^}]*\}\s*[,}\]]`)
)

// decoder turns bytes into a Config, collecting problems on the way.
type decoder struct {
	file     string
	env      func(string) (string, bool)
	problems Problems
	// badPaths are fields whose values were refused while decoding;
	// validation problems about them would only repeat the news.
	badPaths []string
	expanded map[*yaml.Node]bool
}

func (d *decoder) add(line int, field, rule, msg string) {
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Field: field, Rule: rule, Message: msg})
}

// decode returns nil when the document cannot be decoded at all; otherwise a
// Config holding every value that decoded, with the refused ones left zero.
func (d *decoder) decode(data []byte) *Config {
	d.expanded = map[*yaml.Node]bool{}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	err := dec.Decode(&doc)
	if errors.Is(err, io.EOF) {
		return &Config{} // an empty file: all defaults
	}
	if err != nil {
		d.syntax(err, data)
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			d.syntax(err, data)
			return nil
		}
		d.add(extra.Line, "", "syntax", fmt.Sprintf("a second YAML document starts at line %d; the file must hold one", extra.Line))
		return nil
	}
	root := &doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		root = doc.Content[0]
	}
	if isNull(root) {
		return &Config{}
	}
	if !d.walk(root, configType, "") {
		return nil
	}

	// The tree now holds only known keys and values of the right type, so the
	// strict decode below is expected to succeed; it stays strict so that a
	// gap in walk cannot let an unknown key through silently.
	out, err := yaml.Marshal(&doc)
	if err != nil {
		d.add(0, "", "syntax", "cannot re-encode the document: "+err.Error())
		return nil
	}
	var cfg Config
	strict := yaml.NewDecoder(bytes.NewReader(out))
	strict.KnownFields(true)
	if err := strict.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		d.add(0, "", "type", "cannot decode: "+scrubYAMLError(err))
		return nil
	}
	return &cfg
}

// syntax records a YAML parse error with its line when yaml.v3 gives one. An
// unquoted ${VAR} in a flow collection ([...] or {...}) is a YAML error; the
// message says so.
func (d *decoder) syntax(err error, data []byte) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = fmt.Sprintf("invalid YAML at line %d: %s", line, m[2])
	} else {
		msg = "invalid YAML: " + msg
	}
	from, to := line-1, line
	if line == 0 {
		from, to = 1, len(data)
	}
	for _, l := range lines(data, from, to) {
		if flowVar.MatchString(l) {
			msg += ` (inside [ ] or { }, quote a variable: "${NAME}")`
			break
		}
	}
	d.add(line, "", "syntax", msg)
}

// lines returns lines from to to (1-based, inclusive) of data, as far as they
// exist.
func lines(data []byte, from, to int) []string {
	all := strings.Split(string(data), "\n")
	var out []string
	for i := max(from, 1); i <= to && i <= len(all); i++ {
		out = append(out, all[i-1])
	}
	return out
}

// scrubYAMLError keeps a yaml.v3 decode error but drops quoted values, which
// could be secrets.
func scrubYAMLError(err error) string {
	return backquoted.ReplaceAllString(err.Error(), "a value")
}

// walk checks n against type t at path: it expands ${VAR} in scalars, removes
// unknown keys and reports values of the wrong type. It reports false when n
// must be replaced by null (its value was refused).
func (d *decoder) walk(n *yaml.Node, t reflect.Type, path string) bool {
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return false
		}
		return d.walk(n.Alias, t, path)
	}
	if n.Kind == yaml.ScalarNode {
		d.expand(n, path)
	}
	switch {
	case t == durationType:
		return d.leaf(n, t, path)
	case t.Kind() == reflect.Pointer:
		return d.walk(n, t.Elem(), path)
	case t.Kind() == reflect.Interface:
		d.expandAll(n, path)
		return true
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Slice, reflect.Map:
		if isNull(n) {
			return true
		}
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return d.refuse(n, path, "type", "must be a mapping of fields, not "+describe(n))
		}
		d.mapping(n, t, path)
		return true
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return d.refuse(n, path, "type", "must be a list, not "+describe(n))
		}
		for i, c := range n.Content {
			if !d.walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i)) {
				n.Content[i] = nullNode(c)
			}
		}
		return true
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return d.refuse(n, path, "type", "must be a mapping, not "+describe(n))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if !d.walk(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value)) {
				n.Content[i+1] = nullNode(n.Content[i+1])
			}
		}
		return true
	}
	return d.leaf(n, t, path)
}

// mapping checks the keys of n against the fields of struct type t, following
// YAML merge keys.
func (d *decoder) mapping(n *yaml.Node, t reflect.Type, path string) {
	fields := yamlFields(t)
	kept := n.Content[:0:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.ShortTag() == "!!merge" {
			d.merge(v, t, path)
			kept = append(kept, k, v)
			continue
		}
		ft, ok := fields[k.Value]
		if !ok {
			msg := fmt.Sprintf("unknown field %q at line %d", k.Value, k.Line)
			if s := suggest(k.Value, fields); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.add(k.Line, join(path, k.Value), "unknown_field", msg)
			continue
		}
		if !d.walk(v, ft, join(path, k.Value)) {
			v = nullNode(v)
		}
		kept = append(kept, k, v)
	}
	n.Content = kept
}

// merge checks the value of a "<<" key: a mapping, an alias of one, or a list
// of those.
func (d *decoder) merge(v *yaml.Node, t reflect.Type, path string) {
	switch v.Kind {
	case yaml.AliasNode:
		if v.Alias != nil {
			d.merge(v.Alias, t, path)
		}
	case yaml.MappingNode:
		d.mapping(v, t, path)
	case yaml.SequenceNode:
		for _, c := range v.Content {
			d.merge(c, t, path)
		}
	}
}

// leaf decodes a scalar into a fresh value of type t to see whether it fits.
func (d *decoder) leaf(n *yaml.Node, t reflect.Type, path string) bool {
	if n.Kind != yaml.ScalarNode {
		if t == durationType {
			return d.refuse(n, path, "duration", "must be a duration like 10s, not "+describe(n))
		}
		return d.refuse(n, path, "type", "must be "+typeName(t)+", not "+describe(n))
	}
	if t.Kind() == reflect.String && d.expanded[n] && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
		n.Tag = "!!str" // a string field keeps an expanded "null" or "0123" as written
	}
	if isNull(n) {
		return true
	}
	v := reflect.New(t)
	err := n.Decode(v.Interface())
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if t != durationType && n.ShortTag() != "!!int" {
			err = errors.New("not an integer") // yaml.v3 would truncate 12.5 to 12
		}
	}
	if err == nil {
		return true
	}
	got := ""
	if !sensitive(path) {
		got = fmt.Sprintf(" (got %q)", n.Value)
	}
	if t == durationType {
		return d.refuse(n, path, "duration", "must be a duration like 10s"+got)
	}
	return d.refuse(n, path, "type", "must be "+typeName(t)+got)
}

func (d *decoder) refuse(n *yaml.Node, path, rule, msg string) bool {
	d.add(n.Line, path, rule, msg)
	d.badPaths = append(d.badPaths, path)
	return false
}

// expand replaces ${NAME} references in a scalar's value, once per node.
func (d *decoder) expand(n *yaml.Node, path string) {
	if d.expanded[n] || !strings.Contains(n.Value, "${") {
		return
	}
	d.expanded[n] = true
	var b strings.Builder
	s := n.Value
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		rest := s[i+2:]
		j := strings.IndexByte(rest, '}')
		if j < 0 || !varName.MatchString(rest[:j]) {
			d.add(n.Line, path, "env", fmt.Sprintf("malformed variable reference at line %d: write ${NAME} with NAME of letters, digits and _", n.Line))
			d.badPaths = append(d.badPaths, path)
			b.WriteString("${")
			s = rest
			continue
		}
		name := rest[:j]
		val, ok := d.env(name)
		if !ok {
			d.add(n.Line, path, "env", fmt.Sprintf("environment variable %s is not set (line %d)", name, n.Line))
			d.badPaths = append(d.badPaths, path)
		}
		b.WriteString(val)
		s = rest[j+1:]
	}
	n.Value = b.String()
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle|yaml.TaggedStyle) == 0 {
		n.Tag = "" // plain: typed by the expanded value
	}
}

// expandAll expands every scalar under n (free-form values such as options).
func (d *decoder) expandAll(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.ScalarNode:
		d.expand(n, path)
	case yaml.AliasNode:
		if n.Alias != nil {
			d.expandAll(n.Alias, path)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			d.expandAll(c, fmt.Sprintf("%s[%d]", path, i))
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			d.expandAll(n.Content[i+1], join(path, n.Content[i].Value))
		}
	}
}

// yamlFields maps the YAML keys of struct type t to field types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name := yamlName(f)
		if name == "-" || !f.IsExported() {
			continue
		}
		out[name] = f.Type
	}
	return out
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}

// suggest returns the known key closest to key when it is close enough.
func suggest(key string, fields map[string]reflect.Type) string {
	best, bestDist := "", 3
	for name := range fields {
		if dist := levenshtein(key, name); dist < bestDist || dist == bestDist && best != "" && name < best {
			best, bestDist = name, dist
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func nullNode(at *yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null", Line: at.Line, Column: at.Column}
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return "a single value"
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64:
		return "a whole number"
	case reflect.Uint32:
		return "a whole number from 0 to 4294967295"
	case reflect.Bool:
		return "true or false"
	}
	return "a " + t.String()
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
