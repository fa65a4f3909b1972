package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-playground/validator/v10"

	"github.com/refundgate/refundgate/normalize"
)

// Problem is one thing wrong with a configuration file. Field is the YAML
// path ("providers[1].timeout"), Rule a stable name for the check that failed
// ("required", "oneof", "duration", "unknown_field", "env", ...), Message the
// human explanation. Line is the file line when known (0 otherwise). Message
// never holds the value of a secret field.
type Problem struct {
	File    string
	Line    int
	Field   string
	Rule    string
	Message string
}

// String formats p as `file: field: message`, leaving out what is empty.
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		b.WriteString(": ")
	}
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems is every problem found in one file, in the order found: decoding
// problems in document order, then validation problems.
type Problems []Problem

// Error lists the problems, one line each.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// without drops problems about a field at or under one of paths.
func (ps Problems) without(paths []string) Problems {
	out := ps[:0:0]
	for _, p := range ps {
		covered := false
		for _, bad := range paths {
			if bad != "" && (p.Field == bad || strings.HasPrefix(p.Field, bad+".") || strings.HasPrefix(p.Field, bad+"[")) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, p)
		}
	}
	return out
}

// sensitiveFields are the YAML keys whose values never appear in messages.
var sensitiveFields = map[string]bool{
	"secret_key": true, "webhook_secret": true, "secret": true, "api_keys": true,
	"api_key_sha256": true, "dsn": true, "url": true, "base_url": true,
}

// sensitive reports whether the value at a YAML path must not be printed.
// Free-form options are treated as sensitive too.
func sensitive(path string) bool {
	for _, seg := range strings.Split(path, ".") {
		name, _, _ := strings.Cut(seg, "[")
		if sensitiveFields[name] || name == "options" {
			return true
		}
	}
	return false
}

var (
	slugRE   = regexp.MustCompile(`^[a-z0-9_-]+$`)
	sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)
	currRE   = regexp.MustCompile(`^[A-Z]{3}$`)
	hostRE   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)
	validate = newValidator()
)

func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string { return yamlName(f) })
	v.RegisterCustomTypeFunc(func(f reflect.Value) any { return time.Duration(f.Int()) }, Duration(0))
	str := func(check func(string) bool) validator.Func {
		return func(fl validator.FieldLevel) bool { return check(fl.Field().String()) }
	}
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	must(v.RegisterValidation("slug", str(slugRE.MatchString)))
	must(v.RegisterValidation("sha256hex", str(sha256RE.MatchString)))
	must(v.RegisterValidation("currency", str(func(s string) bool { return currRE.MatchString(s) && normalize.ValidCurrency(s) })))
	must(v.RegisterValidation("hostport", str(validHostPort)))
	must(v.RegisterValidation("httpurl", str(validHTTPURL)))
	return v
}

// validHostPort accepts host:port with an empty host, an IP or a DNS name,
// and a port from 0 to 65535.
func validHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return false
	}
	if host == "" || net.ParseIP(host) != nil {
		return true
	}
	return hostRE.MatchString(host)
}

// validHTTPURL accepts absolute http and https URLs with a host.
func validHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// validate runs the tag rules and the checks between sections.
func (c *Config) validate() Problems {
	var ps Problems
	add := func(field, rule, msg string) {
		ps = append(ps, Problem{File: c.Path, Field: field, Rule: rule, Message: msg})
	}
	if err := validate.Struct(c); err != nil {
		var ves validator.ValidationErrors
		if !errors.As(err, &ves) {
			add("", "internal", err.Error())
			return ps
		}
		for _, fe := range ves {
			field := fe.Namespace()
			if _, rest, ok := strings.Cut(field, "."); ok {
				field = rest
			}
			add(field, fe.Tag(), message(fe, field))
		}
	}

	merchantAt := map[string]int{}
	for i, m := range c.Merchants {
		at := fmt.Sprintf("merchants[%d]", i)
		if m.ID != "" {
			if j, dup := merchantAt[m.ID]; dup {
				add(at+".id", "unique", fmt.Sprintf("merchant id %q is already used by merchants[%d]", m.ID, j))
			} else {
				merchantAt[m.ID] = i
			}
		}
		if len(m.APIKeys)+len(m.APIKeySHA256) == 0 {
			add(at+".api_keys", "required", "needs at least one key in api_keys or api_key_sha256")
		}
		for k, p := range m.Providers {
			if p != "" && c.Provider(p) == nil {
				add(fmt.Sprintf("%s.providers[%d]", at, k), "exists", fmt.Sprintf("no provider named %q in providers", p))
			}
		}
		if m.Policy.MaxAmount > 0 && m.Policy.ApprovalAbove > m.Policy.MaxAmount {
			add(at+".policy.approval_above", "ltefield", fmt.Sprintf("must not exceed policy.max_amount (%d)", m.Policy.MaxAmount))
		}
	}
	ps = append(ps, c.sharedKeys()...)

	providerAt := map[string]int{}
	for i, p := range c.Providers {
		if p.Name == "" {
			continue
		}
		if j, dup := providerAt[p.Name]; dup {
			add(fmt.Sprintf("providers[%d].name", i), "unique", fmt.Sprintf("provider name %q is already used by providers[%d]", p.Name, j))
			continue
		}
		providerAt[p.Name] = i
	}

	for i, r := range c.Routes {
		at := fmt.Sprintf("routes[%d]", i)
		var m *Merchant
		if r.Merchant != "" {
			if m = c.Merchant(r.Merchant); m == nil {
				add(at+".merchant", "exists", fmt.Sprintf("no merchant with id %q in merchants", r.Merchant))
			}
		}
		if r.Provider == "" {
			continue
		}
		if c.Provider(r.Provider) == nil {
			add(at+".provider", "exists", fmt.Sprintf("no provider named %q in providers", r.Provider))
			continue
		}
		if m != nil && !m.MayUse(r.Provider) {
			add(at+".provider", "permitted", fmt.Sprintf("merchant %q may not use provider %q (add it to merchants[%d].providers)", r.Merchant, r.Provider, merchantAt[r.Merchant]))
		}
	}
	return ps
}

// sharedKeys reports API keys (plain or hashed) that belong to more than one
// merchant, comparing SHA-256 digests so a plain key and its hash match. It
// names the places, never the key.
func (c *Config) sharedKeys() Problems {
	var ps Problems
	owner := map[[32]byte]int{}
	for i := range c.Merchants {
		m := &c.Merchants[i]
		seen := map[[32]byte]bool{}
		for k, h := range m.KeyHashes() {
			if seen[h] {
				continue // a repeat within one merchant is the unique rule's business
			}
			seen[h] = true
			j, taken := owner[h]
			if !taken {
				owner[h] = i
				continue
			}
			field := fmt.Sprintf("merchants[%d].api_keys[%d]", i, k)
			if k >= len(m.APIKeys) {
				field = fmt.Sprintf("merchants[%d].api_key_sha256[%d]", i, k-len(m.APIKeys))
			}
			ps = append(ps, Problem{File: c.Path, Field: field, Rule: "unique",
				Message: fmt.Sprintf("this key is also a key of merchant %q (merchants[%d]); each key belongs to one merchant", c.Merchants[j].ID, j)})
		}
	}
	return ps
}

// message explains a validator error in words, printing the value only for
// fields that are not sensitive.
func message(fe validator.FieldError, field string) string {
	got := ""
	if !sensitive(field) {
		got = fmt.Sprintf(" (got %q)", fmt.Sprint(fe.Value()))
	}
	param := fe.Param()
	kind := fe.Kind()
	switch fe.Tag() {
	case "required":
		if kind == reflect.Slice {
			return "must not be empty"
		}
		return "is required"
	case "min", "max", "gt", "gte":
		word := map[string]string{"min": "at least", "max": "at most", "gt": "greater than", "gte": "at least"}[fe.Tag()]
		switch kind {
		case reflect.String:
			return fmt.Sprintf("must be %s %s characters long", word, param)
		case reflect.Slice:
			return fmt.Sprintf("must have %s %s entries", word, param)
		}
		if fe.Type() == reflect.TypeFor[time.Duration]() {
			if param == "0" && fe.Tag() == "gte" {
				return "must not be negative" + got
			}
			if param == "0" && fe.Tag() == "gt" {
				return "must be a positive duration" + got
			}
			return fmt.Sprintf("must be a duration %s %s%s", word, param, got)
		}
		if param == "0" && fe.Tag() == "gte" {
			return "must not be negative" + got
		}
		return fmt.Sprintf("must be %s %s%s", word, param, got)
	case "oneof":
		return fmt.Sprintf("must be one of %s%s", strings.Join(strings.Fields(param), ", "), got)
	case "unique":
		return "must not list the same entry twice"
	case "slug":
		return "must use only a-z, 0-9, _ and -" + got
	case "sha256hex":
		return "must be a SHA-256 digest in 64 lowercase hex digits"
	case "currency":
		return "must be an uppercase ISO 4217 currency code like ZAR" + got
	case "hostport":
		return "must be host:port like 127.0.0.1:8080" + got
	case "httpurl":
		return "must be an absolute http or https URL"
	}
	return fmt.Sprintf("fails rule %s", fe.Tag())
}
