package gateway

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/refundgate/refundgate/config"
	"github.com/refundgate/refundgate/policy"
	"github.com/refundgate/refundgate/providers"
)

// Account is one configured provider account, ready to call.
type Account struct {
	Name     string
	Type     string
	Provider providers.Provider
	Caps     providers.Capabilities
	// Verifier is nil when the adapter takes no webhooks.
	Verifier providers.WebhookVerifier
	Timeout  time.Duration
	breaker  *breaker
}

// Merchant is one configured merchant.
type Merchant struct {
	ID        string
	Providers []string
	Policy    policy.Policy
}

// May reports whether the merchant may use the account.
func (m *Merchant) May(account string) bool { return slices.Contains(m.Providers, account) }

// Snapshot is one loaded configuration. Requests hold the snapshot they
// started with; a reload swaps in a new one.
type Snapshot struct {
	cfg       *config.Config
	merchants map[string]*Merchant
	byKey     map[[32]byte]*Merchant
	accounts  map[string]*Account
}

// Account returns the named account or nil.
func (s *Snapshot) Account(name string) *Account { return s.accounts[name] }

// Authenticate returns the merchant whose API key is key, or nil. Keys are
// compared by their SHA-256, so the lookup time does not depend on how much
// of a key matches.
func (s *Snapshot) Authenticate(key string) *Merchant {
	if key == "" {
		return nil
	}
	return s.byKey[sha256.Sum256([]byte(key))]
}

// route picks the account for a merchant's payment.
func (s *Snapshot) route(m *Merchant, paymentID, currency string) (string, bool) {
	return s.cfg.Route(m.ID, paymentID, currency)
}

// BuildOptions are the parts of a snapshot that do not come from the file.
type BuildOptions struct {
	// HTTPClient, when set, is used by every adapter (tests).
	HTTPClient *http.Client
	// Breakers carries breakers over from the previous snapshot.
	Breakers *Breakers
}

// NewSnapshot builds the accounts and merchants of cfg. It does no I/O; an
// unknown adapter type or bad options fail naming the account.
func NewSnapshot(cfg *config.Config, opts BuildOptions) (*Snapshot, error) {
	s := &Snapshot{cfg: cfg, merchants: map[string]*Merchant{}, byKey: map[[32]byte]*Merchant{}, accounts: map[string]*Account{}}
	if opts.Breakers == nil {
		opts.Breakers = NewBreakers(nil)
	}
	for i, pc := range cfg.Providers {
		if !providers.Known(pc.Type) {
			return nil, fmt.Errorf("%s: providers[%d].type: unknown provider type %q (known: %v)", cfg.Path, i, pc.Type, providers.Types())
		}
		p, err := providers.Open(providers.Config{
			Name: pc.Name, Type: pc.Type, BaseURL: pc.BaseURL, SecretKey: pc.SecretKey,
			WebhookSecret: pc.WebhookSecret, Timeout: pc.Timeout.D(), MaxConns: pc.MaxConnections, Options: pc.Options,
			HTTPClient: opts.HTTPClient,
		})
		if err != nil {
			return nil, fmt.Errorf("%s: providers[%d] (%s): %s", cfg.Path, i, pc.Name,
				providers.Scrub(err.Error(), pc.SecretKey, pc.WebhookSecret))
		}
		a := &Account{Name: pc.Name, Type: pc.Type, Provider: p, Caps: p.Capabilities(), Timeout: pc.Timeout.D()}
		a.Verifier, _ = p.(providers.WebhookVerifier)
		a.breaker = opts.Breakers.get(pc.Name, breakerSettings{
			failures: pc.Breaker.ConsecutiveFailures, openFor: pc.Breaker.OpenFor.D(), halfOpen: pc.Breaker.HalfOpenRequests,
		})
		s.accounts[pc.Name] = a
	}
	for _, mc := range cfg.Merchants {
		m := &Merchant{ID: mc.ID, Providers: mc.Providers, Policy: policy.Policy{
			MaxAmount: mc.Policy.MaxAmount, ApprovalAbove: mc.Policy.ApprovalAbove, RefundWindow: mc.Policy.RefundWindow.D(),
		}}
		s.merchants[m.ID] = m
		for _, h := range mc.KeyHashes() {
			s.byKey[h] = m
		}
	}
	return s, nil
}
