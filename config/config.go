// Package config is the refundgate.yaml schema: ${VAR} expansion, strict
// decoding, defaults and validation.
//
// Load and Parse work in four steps and collect every problem they find
// instead of stopping at the first:
//
//  1. Parse the YAML into a node tree (syntax errors name the line).
//  2. Walk the tree against the Config type: expand ${VAR} references in
//     scalar values, reject unknown keys (naming the YAML path, the key and
//     the line, with a suggestion when a known key is close) and reject values
//     of the wrong type (naming the YAML path).
//  3. Decode the tree with a yaml.v3 Decoder with KnownFields(true), then fill
//     defaults for zero values.
//  4. Validate with go-playground/validator struct tags plus hand checks for
//     what tags cannot say (uniqueness, references between sections).
//
// Environment expansion. Only the form ${NAME} is expanded, with NAME matching
// [A-Za-z_][A-Za-z0-9_]*. Expansion happens in scalar values of the parsed
// document, not in the raw text: comments and keys are never expanded, and a
// value cannot change the YAML structure (a secret containing ": ", "#" or a
// newline stays one string). Expanded values are not expanded again. A lone
// "$", "$$" and "$NAME" without braces stay as they are; there is no escape
// for a literal "${". A "${" that does not start a well-formed ${NAME}
// reference is a problem, and so is a variable that is not set (a variable set
// to the empty string expands to the empty string). A value that is exactly a
// reference in plain (unquoted) style is typed by its expansion, as if it had
// been written in the file, except that fields of string type always get a
// string (a key "null" or "0123" stays as written).
//
// Secrets. Problems name files, fields, rules and variables; they never carry
// the value of secret_key, webhook_secret, secret, api_keys, api_key_sha256,
// dsn, url or base_url.
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Defaults filled by ApplyDefaults for zero values.
const (
	DefaultAddr                = "127.0.0.1:8080"
	DefaultBodyLimitBytes      = 64 << 10
	DefaultShutdownTimeout     = 15 * time.Second
	DefaultRequestTimeout      = 30 * time.Second
	DefaultStoreDriver         = "sqlite"
	DefaultSQLiteDSN           = "refundgate.db"
	DefaultLogLevel            = "info"
	DefaultLogFormat           = "json"
	DefaultProviderTimeout     = 10 * time.Second
	DefaultMaxConnections      = 256
	DefaultConsecutiveFailures = 5
	DefaultOpenFor             = 30 * time.Second
	DefaultHalfOpenRequests    = 1
)

// Config is one refundgate.yaml. Treat a loaded Config as immutable: a reload
// builds a new one.
type Config struct {
	Server    Server     `yaml:"server"`
	Store     Store      `yaml:"store"`
	Log       Log        `yaml:"log"`
	Merchants []Merchant `yaml:"merchants" validate:"dive"`
	Providers []Provider `yaml:"providers" validate:"dive"`
	Routes    []Route    `yaml:"routes" validate:"dive"`
	// Path is the file it came from (not in YAML).
	Path string `yaml:"-"`
}

// Server is the HTTP listener. Defaults: addr 127.0.0.1:8080, body limit
// 65536 bytes (allowed 1024 to 10 MiB), shutdown timeout 15s, request timeout
// 30s.
type Server struct {
	Addr            string   `yaml:"addr" validate:"required,hostport"`
	BodyLimitBytes  int      `yaml:"body_limit_bytes" validate:"min=1024,max=10485760"`
	ShutdownTimeout Duration `yaml:"shutdown_timeout" validate:"gt=0"`
	RequestTimeout  Duration `yaml:"request_timeout" validate:"gt=0"`
}

// Store selects the storage driver: sqlite (default, dsn defaults to
// refundgate.db) or postgres (dsn required).
type Store struct {
	Driver string `yaml:"driver" validate:"required,oneof=sqlite postgres"`
	DSN    string `yaml:"dsn" validate:"required"`
}

// Log configures logging: level debug, info (default), warn or error; format
// json (default) or console.
type Log struct {
	Level  string `yaml:"level" validate:"required,oneof=debug info warn error"`
	Format string `yaml:"format" validate:"required,oneof=json console"`
}

// Merchant is one API client. It authenticates with any of its keys, given in
// plain (api_keys, at least 16 characters) or as lowercase hex SHA-256 digests
// (api_key_sha256); it needs at least one. It may use only the provider
// accounts listed in Providers (at least one).
type Merchant struct {
	ID           string   `yaml:"id" validate:"required,max=64,slug"`
	APIKeys      []string `yaml:"api_keys" validate:"unique,dive,min=16"`
	APIKeySHA256 []string `yaml:"api_key_sha256" validate:"unique,dive,sha256hex"`
	Providers    []string `yaml:"providers" validate:"min=1,unique,dive,required"`
	Webhook      *Webhook `yaml:"webhook"`
	Policy       Policy   `yaml:"policy"`
}

// Webhook is where a merchant's refund events go. When present, url (http or
// https) and secret (at least 16 characters) are both required.
type Webhook struct {
	URL    string `yaml:"url" validate:"required,httpurl"`
	Secret string `yaml:"secret" validate:"required,min=16"`
}

// Policy limits a merchant's refunds. Zero means no limit. ApprovalAbove holds
// refunds above that amount for approval; when both are set it must not
// exceed MaxAmount. Amounts are in the minor unit of the refund's currency.
type Policy struct {
	MaxAmount     int64    `yaml:"max_amount" validate:"gte=0"`
	ApprovalAbove int64    `yaml:"approval_above" validate:"gte=0"`
	RefundWindow  Duration `yaml:"refund_window" validate:"gte=0"`
}

// Provider is one provider account. Type names the adapter; the caller checks
// it is registered and decodes Options strictly for it. Timeout defaults to
// 10s (allowed 1ms to 5m). MaxConnections caps the open connections to the
// provider's host, in use or idle (default 256, allowed 1 to 10000): a burst
// waits for a free connection, inside Timeout, instead of opening one per
// request in flight.
type Provider struct {
	Name           string         `yaml:"name" validate:"required,max=64,slug"`
	Type           string         `yaml:"type" validate:"required"`
	BaseURL        string         `yaml:"base_url" validate:"required,httpurl"`
	SecretKey      string         `yaml:"secret_key" validate:"required,min=8"`
	WebhookSecret  string         `yaml:"webhook_secret" validate:"omitempty,min=8"`
	Timeout        Duration       `yaml:"timeout" validate:"min=1ms,max=5m"`
	MaxConnections int            `yaml:"max_connections" validate:"min=1,max=10000"`
	Options        map[string]any `yaml:"options"`
	Breaker        Breaker        `yaml:"breaker"`
}

// Breaker configures the account's circuit breaker. Defaults: 5 consecutive
// failures open it for 30s, then 1 trial request is let through.
type Breaker struct {
	ConsecutiveFailures uint32   `yaml:"consecutive_failures" validate:"min=1"`
	OpenFor             Duration `yaml:"open_for" validate:"gt=0"`
	HalfOpenRequests    uint32   `yaml:"half_open_requests" validate:"min=1"`
}

// Route picks a provider account for a refund. Empty Merchant, PaymentIDPrefix
// or Currency match anything. Currency, when set, is an uppercase ISO 4217
// code.
type Route struct {
	Merchant        string `yaml:"merchant" validate:"omitempty,slug"`
	PaymentIDPrefix string `yaml:"payment_id_prefix"`
	Currency        string `yaml:"currency" validate:"omitempty,currency"`
	Provider        string `yaml:"provider" validate:"required"`
}

// Duration is a time.Duration written in YAML as a Go duration string such as
// "10s" or "4320h".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML parses a duration string such as "30s" or "4320h". A bare 0
// is zero; other numbers without a unit are refused.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("must be a duration like 10s")
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("must be a duration like 10s (got %q)", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes d as a duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Load reads the file at path and parses it with Parse, expanding ${VAR} from
// the process environment. The error is a Problems when the file is read but
// wrong.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Problems{{File: path, Rule: "read", Message: err.Error()}}
	}
	return Parse(path, data, nil)
}

// Parse expands, decodes strictly, fills defaults and validates data. path
// names the file in problems and becomes Config.Path. env looks variables up;
// nil means os.LookupEnv. On failure the Config is nil and the error is a
// Problems listing everything found.
func Parse(path string, data []byte, env func(string) (string, bool)) (*Config, error) {
	if env == nil {
		env = os.LookupEnv
	}
	d := &decoder{file: path, env: env}
	cfg := d.decode(data)
	if cfg == nil {
		return nil, d.problems
	}
	cfg.Path = path
	cfg.ApplyDefaults()
	problems := append(d.problems, cfg.validate().without(d.badPaths)...)
	if len(problems) > 0 {
		return nil, problems
	}
	return cfg, nil
}

// ApplyDefaults fills zero values with the documented defaults. Parse calls
// it; call it yourself on a Config built in code before Validate.
func (c *Config) ApplyDefaults() {
	if c.Server.Addr == "" {
		c.Server.Addr = DefaultAddr
	}
	if c.Server.BodyLimitBytes == 0 {
		c.Server.BodyLimitBytes = DefaultBodyLimitBytes
	}
	if c.Server.ShutdownTimeout == 0 {
		c.Server.ShutdownTimeout = Duration(DefaultShutdownTimeout)
	}
	if c.Server.RequestTimeout == 0 {
		c.Server.RequestTimeout = Duration(DefaultRequestTimeout)
	}
	if c.Store.Driver == "" {
		c.Store.Driver = DefaultStoreDriver
	}
	if c.Store.Driver == "sqlite" && c.Store.DSN == "" {
		c.Store.DSN = DefaultSQLiteDSN
	}
	if c.Log.Level == "" {
		c.Log.Level = DefaultLogLevel
	}
	if c.Log.Format == "" {
		c.Log.Format = DefaultLogFormat
	}
	for i := range c.Providers {
		p := &c.Providers[i]
		if p.Timeout == 0 {
			p.Timeout = Duration(DefaultProviderTimeout)
		}
		if p.MaxConnections == 0 {
			p.MaxConnections = DefaultMaxConnections
		}
		if p.Breaker.ConsecutiveFailures == 0 {
			p.Breaker.ConsecutiveFailures = DefaultConsecutiveFailures
		}
		if p.Breaker.OpenFor == 0 {
			p.Breaker.OpenFor = Duration(DefaultOpenFor)
		}
		if p.Breaker.HalfOpenRequests == 0 {
			p.Breaker.HalfOpenRequests = DefaultHalfOpenRequests
		}
	}
}

// Validate checks c as Parse does after decoding, without filling defaults.
// It returns nil or a Problems naming c.Path.
func (c *Config) Validate() error {
	if p := c.validate(); len(p) > 0 {
		return p
	}
	return nil
}

// Merchant returns the merchant with this id, or nil.
func (c *Config) Merchant(id string) *Merchant {
	for i := range c.Merchants {
		if c.Merchants[i].ID == id {
			return &c.Merchants[i]
		}
	}
	return nil
}

// Provider returns the provider account with this name, or nil.
func (c *Config) Provider(name string) *Provider {
	for i := range c.Providers {
		if c.Providers[i].Name == name {
			return &c.Providers[i]
		}
	}
	return nil
}

// Route returns the provider account for a merchant's payment: the first
// route, in file order, whose merchant matches (empty = any),
// payment_id_prefix is a prefix of paymentID (empty = any) and currency
// matches (empty = any; compared without regard to case; an empty request
// currency matches only routes without currency). Routes naming a provider the
// merchant may not use are skipped, so a route without merchant applies only
// to merchants allowed that provider; an unknown merchant gets no route. ok is
// false when none matches.
func (c *Config) Route(merchantID, paymentID, currency string) (provider string, ok bool) {
	m := c.Merchant(merchantID)
	if m == nil {
		return "", false
	}
	for _, r := range c.Routes {
		if r.Merchant != "" && r.Merchant != merchantID {
			continue
		}
		if !strings.HasPrefix(paymentID, r.PaymentIDPrefix) {
			continue
		}
		if r.Currency != "" && !strings.EqualFold(r.Currency, currency) {
			continue
		}
		if !m.MayUse(r.Provider) {
			continue
		}
		return r.Provider, true
	}
	return "", false
}

// MayUse reports whether the merchant may use the provider account.
func (m *Merchant) MayUse(provider string) bool {
	for _, p := range m.Providers {
		if p == provider {
			return true
		}
	}
	return false
}

// KeyHashes returns the SHA-256 of each api_keys entry followed by the decoded
// api_key_sha256 entries (entries that are not 64 hex digits are skipped; a
// validated Config has none), so the caller can hash a presented key and
// compare it with crypto/subtle in constant time.
func (m *Merchant) KeyHashes() [][32]byte {
	out := make([][32]byte, 0, len(m.APIKeys)+len(m.APIKeySHA256))
	for _, k := range m.APIKeys {
		out = append(out, sha256.Sum256([]byte(k)))
	}
	for _, h := range m.APIKeySHA256 {
		var sum [32]byte
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != len(sum) {
			continue
		}
		copy(sum[:], b)
		out = append(out, sum)
	}
	return out
}
