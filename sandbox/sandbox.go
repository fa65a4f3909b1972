// Package sandbox simulates the refund APIs of the three providers refundgate
// adapts (the Yoco Checkout API, the Checkout.com legacy v2 charges API and the
// Smartpay v1 refunds API) so that refundgate can be run, demonstrated, tested
// and load-tested without provider accounts.
//
// The simulators are written from the providers' own documents (see
// /work/shared/providers) and aim at fidelity: paths, auth headers and key
// formats, field names and types, limits, status values, error bodies and
// status codes, idempotency semantics, and signed webhooks. Where a document is
// silent the choice made is written down in the doc comment of the simulator
// concerned (yoco.go, checkoutcom.go, smartpay.go).
//
// All three are served by one handler: Yoco under /yoco/api, Checkout.com
// under /checkoutcom/v2 and Smartpay under /smartpay/v1. A JSON control
// surface under /_sandbox creates payments, sets faults and webhook URLs and
// exposes the providers' own refund records as ground truth. Options (and
// BindFlags, which maps them to the flags of `refundgate sandbox`) set keys,
// provider behaviour, webhook schedule and URLs, and faults at start; Serve
// and ListenAndServe run the handler on a listener.
package sandbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Provider names used by the control surface and the Go API.
const (
	ProviderYoco        = "yoco"
	ProviderCheckoutCom = "checkoutcom"
	ProviderSmartpay    = "smartpay"
)

// Options configures a Sandbox. The zero value is usable.
type Options struct {
	// YocoPartialRefunds lets Yoco refund requests carry an amount. When false
	// (the default, as in the seed documents) a request with an amount is
	// refused with 400.
	YocoPartialRefunds bool
	// YocoSettleDelay is the time until an accepted (202) Yoco refund becomes
	// final. 0 settles before the 202 is answered; the webhook is still sent
	// asynchronously.
	YocoSettleDelay time.Duration
	// YocoReversedRate is the fraction in [0,1] of Yoco checkouts that end
	// "reversed" instead of "refunded" when fully refunded (refunded before
	// settlement). It is decided per checkout when the checkout is created.
	YocoReversedRate float64
	// YocoFailedRate is the fraction in [0,1] of accepted (202) Yoco refunds
	// that end failed: a refund.failed webhook is sent, the checkout keeps its
	// status and the amount can be refunded again. It is decided per refund
	// when it settles.
	YocoFailedRate float64
	// YocoLiveRefundsOnly refuses refunds of test-mode checkouts with 400
	// live_checkout_required, as the seed says ("the Checkout must have been
	// created using live keys"). Off by default so test keys can refund.
	YocoLiveRefundsOnly bool
	// Faults are set when the sandbox starts, as by SetFault in order. New
	// panics on an invalid fault; Validate reports it first.
	Faults []Fault
	// WebhookURLs maps a provider name to the URL its webhooks are sent to
	// from the start, as by SetWebhookURL.
	WebhookURLs map[string]string
	// WebhookRetry is the compressed retry schedule: the delay before each
	// delivery attempt, the first usually 0. nil means 0, 50ms, 200ms, 1s, 5s.
	WebhookRetry []time.Duration
	// WebhookDuplicateRate is the fraction in [0,1] of successfully delivered
	// webhooks that are delivered a second time.
	WebhookDuplicateRate float64
	// Keys overrides the default keys; nil uses DefaultKeys. Empty fields of a
	// non-nil Keys are filled from DefaultKeys.
	Keys *Keys
	// Now is the clock used for timestamps and idempotency expiry; nil means
	// time.Now.
	Now func() time.Time
	// Seed seeds the random source used for ids and fault and duplicate
	// decisions; 0 picks a random seed.
	Seed int64
	// HTTPClient delivers webhooks; nil means a client with a 5s timeout.
	HTTPClient *http.Client
	// WebhookWorkers is the number of concurrent webhook senders; 0 means 4.
	WebhookWorkers int
}

// ProviderKeys are one provider account's keys.
type ProviderKeys struct {
	TestSecretKey string `json:"test_secret_key"`
	LiveSecretKey string `json:"live_secret_key"`
	WebhookSecret string `json:"webhook_secret"`
}

// Keys are the keys of the three simulated provider accounts.
type Keys struct {
	Yoco        ProviderKeys `json:"yoco"`
	CheckoutCom ProviderKeys `json:"checkoutcom"`
	Smartpay    ProviderKeys `json:"smartpay"`
}

// DefaultKeys returns the fixed keys a Sandbox uses unless Options.Keys says
// otherwise. Checkout.com signs webhooks with the secret key of the event's
// mode, so its WebhookSecret is always the test secret key (an override of
// it alone is ignored), for information only.
// Smartpay's WebhookSecret is a base62 signing secret.
func DefaultKeys() Keys {
	return Keys{
		Yoco: ProviderKeys{
			TestSecretKey: "sk_test_sandbox_yoco_4f1c2b7e9a0d4c3b8e6f",
			LiveSecretKey: "sk_live_sandbox_yoco_9b2e6d1a7c4f4e0a8d3c",
			WebhookSecret: "whsec_c2FuZGJveC15b2NvLXdlYmhvb2stc2VjcmV0LTAx",
		},
		CheckoutCom: ProviderKeys{
			TestSecretKey: "sk_test_5a4db0c0-7f53-4ccc-b0a6-d943decc3c31",
			LiveSecretKey: "sk_5a4db0c0-1e2d-4a3b-9c8d-7e6f5a4b3c2d",
			WebhookSecret: "sk_test_5a4db0c0-7f53-4ccc-b0a6-d943decc3c31",
		},
		Smartpay: ProviderKeys{
			TestSecretKey: "sk_test_sandboxSmartpay7Hc2Kq9WxZ4mLp",
			LiveSecretKey: "sk_live_sandboxSmartpay3Jd8Rt5VyN1bQs",
			WebhookSecret: "gE8pXq2LzR7wV4nK9tY3bM6cJ1hF5sD0aU",
		},
	}
}

func mergeKeys(k *Keys) Keys {
	d := DefaultKeys()
	if k == nil {
		return d
	}
	fill := func(dst *ProviderKeys, src ProviderKeys) {
		if src.TestSecretKey != "" {
			dst.TestSecretKey = src.TestSecretKey
		}
		if src.LiveSecretKey != "" {
			dst.LiveSecretKey = src.LiveSecretKey
		}
		if src.WebhookSecret != "" {
			dst.WebhookSecret = src.WebhookSecret
		}
	}
	fill(&d.Yoco, k.Yoco)
	fill(&d.CheckoutCom, k.CheckoutCom)
	fill(&d.Smartpay, k.Smartpay)
	// Checkout.com signs with the secret key itself: whatever was asked, the
	// webhook secret reported is the (possibly overridden) test secret key.
	d.CheckoutCom.WebhookSecret = d.CheckoutCom.TestSecretKey
	return d
}

// Refund is one refund as the simulated provider recorded it: the ground
// truth for invariant checks.
type Refund struct {
	ID             string `json:"id"`
	PaymentID      string `json:"payment_id"`
	Amount         int64  `json:"amount"`
	Currency       string `json:"currency"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	TrackID        string `json:"track_id,omitempty"`
	// Status is the provider's status of the refund: Yoco "pending",
	// "succeeded" or "failed"; Checkout.com "Refunded"; Smartpay "succeeded".
	Status string `json:"status,omitempty"`
}

// Sandbox holds the three simulators, their faults and webhook queue.
type Sandbox struct {
	opts Options
	keys Keys
	now  func() time.Time

	rngMu sync.Mutex
	rng   *mrand.Rand

	faults    *faultTable
	hooks     *webhookQueue
	idemStore *idemStore

	yoco *yocoSim
	cko  *ckoSim
	sp   *smartpaySim

	mux *http.ServeMux

	// beforeApply is a test hook run just before a refund is applied (after
	// the idempotency key is taken), to hold requests in flight.
	beforeApply atomic.Pointer[func()]
	// hanging counts requests held by the hang fault.
	hanging atomic.Int64

	ctx    context.Context
	cancel context.CancelFunc
	timers sync.WaitGroup
}

// Validate reports the first invalid setting of o: a rate outside [0,1], an
// invalid fault, a webhook URL for an unknown provider, or a webhook secret
// that the provider's signing scheme cannot decode.
func (o Options) Validate() error {
	for name, r := range map[string]float64{
		"YocoReversedRate": o.YocoReversedRate, "YocoFailedRate": o.YocoFailedRate,
		"WebhookDuplicateRate": o.WebhookDuplicateRate,
	} {
		if r < 0 || r > 1 || r != r {
			return fmt.Errorf("sandbox: %s %v is not in [0,1]", name, r)
		}
	}
	if o.YocoSettleDelay < 0 {
		return errors.New("sandbox: YocoSettleDelay must not be negative")
	}
	for _, d := range o.WebhookRetry {
		if d < 0 {
			return errors.New("sandbox: WebhookRetry delays must not be negative")
		}
	}
	for _, f := range o.Faults {
		if err := f.validate(); err != nil {
			return fmt.Errorf("sandbox: fault %+v: %w", f, err)
		}
	}
	for p := range o.WebhookURLs {
		if !knownProvider(p) {
			return fmt.Errorf("sandbox: webhook URL for unknown provider %q", p)
		}
	}
	k := mergeKeys(o.Keys)
	if sec, ok := strings.CutPrefix(k.Yoco.WebhookSecret, "whsec_"); !ok || sec == "" {
		return errors.New("sandbox: the Yoco webhook secret must be whsec_<base64>")
	} else if _, err := base64.StdEncoding.DecodeString(sec); err != nil {
		return fmt.Errorf("sandbox: the Yoco webhook secret is not whsec_<base64>: %v", err)
	}
	if sec := k.Smartpay.WebhookSecret; strings.Trim(sec, alnum) != "" {
		return errors.New("sandbox: the Smartpay webhook secret must be base62 (A-Z a-z 0-9)")
	}
	return nil
}

// New returns a Sandbox ready to serve; Close stops its webhook workers.
// It panics when opts.Validate fails: invalid options are a programmer
// error (flags are checked by the function BindFlags returns).
func New(opts Options) *Sandbox {
	if err := opts.Validate(); err != nil {
		panic(err)
	}
	seed := opts.Seed
	if seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		seed = int64(binary.LittleEndian.Uint64(b[:]))
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sandbox{
		opts:      opts,
		keys:      mergeKeys(opts.Keys),
		now:       now,
		rng:       mrand.New(mrand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15)),
		faults:    newFaultTable(),
		idemStore: newIdemStore(now),
		ctx:       ctx,
		cancel:    cancel,
	}
	s.hooks = newWebhookQueue(s, opts)
	s.yoco = newYocoSim(s)
	s.cko = newCkoSim(s)
	s.sp = newSmartpaySim(s)
	s.mux = http.NewServeMux()
	s.yoco.routes(s.mux)
	s.cko.routes(s.mux)
	s.sp.routes(s.mux)
	s.controlRoutes(s.mux)
	for _, f := range opts.Faults {
		_ = s.SetFault(f) // validated above
	}
	for p, u := range opts.WebhookURLs {
		s.SetWebhookURL(p, u)
	}
	return s
}

// Handler serves the three provider APIs and the control surface.
func (s *Sandbox) Handler() http.Handler { return s.mux }

// Keys returns the keys of the three simulated accounts.
func (s *Sandbox) Keys() Keys { return s.keys }

// CreatePayment creates a captured payment of amount minor units in the
// given provider ("yoco", "checkoutcom" or "smartpay") and returns the id a
// refund is made against: a Yoco checkout id, a Checkout.com capture charge
// id or a Smartpay payment id.
func (s *Sandbox) CreatePayment(provider string, amount int64, currency string, live bool) (string, error) {
	if amount < 1 {
		return "", errors.New("sandbox: amount must be at least 1")
	}
	if !isUpperCurrency(currency) {
		return "", errors.New("sandbox: currency must be 3 uppercase letters")
	}
	switch provider {
	case ProviderYoco:
		return s.yoco.createCheckout(amount, currency, live, YocoCheckoutCompleted), nil
	case ProviderCheckoutCom:
		capture, _ := s.cko.createCharge(amount, currency, live)
		return capture, nil
	case ProviderSmartpay:
		// Smartpay settles in yen only (its docs: "JPY, whose minor unit is
		// the yen"), so its amounts are whole yen with no conversion.
		if currency != "JPY" {
			return "", fmt.Errorf("sandbox: smartpay payments are in JPY, not %s", currency)
		}
		return s.sp.createPayment(amount, currency, live), nil
	}
	return "", fmt.Errorf("sandbox: unknown provider %q", provider)
}

// CreateYocoCheckout creates a Yoco checkout of amount cents in the given
// status (created, started, processing or completed; only a completed one
// can be refunded) and returns its id.
func (s *Sandbox) CreateYocoCheckout(amount int64, currency string, live bool, status string) (string, error) {
	if amount < 1 {
		return "", errors.New("sandbox: amount must be at least 1")
	}
	if !isUpperCurrency(currency) {
		return "", errors.New("sandbox: currency must be 3 uppercase letters")
	}
	switch status {
	case YocoCheckoutCreated, YocoCheckoutStarted, YocoCheckoutProcessing, YocoCheckoutCompleted:
	default:
		return "", fmt.Errorf("sandbox: a Yoco checkout cannot be created %q (want created, started, processing or completed)", status)
	}
	return s.yoco.createCheckout(amount, currency, live, status), nil
}

// CheckoutComAuthorizationID returns the authorization charge id of the
// Checkout.com payment whose capture charge id is captureID.
func (s *Sandbox) CheckoutComAuthorizationID(captureID string) (string, bool) {
	return s.cko.authorizationOf(captureID)
}

// Refunds returns the provider's refund records, oldest first, for one
// payment or, when paymentID is "", for all payments of that provider.
func (s *Sandbox) Refunds(provider, paymentID string) []Refund {
	switch provider {
	case ProviderYoco:
		return s.yoco.refunds(paymentID)
	case ProviderCheckoutCom:
		return s.cko.refunds(paymentID)
	case ProviderSmartpay:
		return s.sp.refunds(paymentID)
	}
	return nil
}

// SetWebhookURL sets where a provider's webhooks are sent; "" stops sending.
func (s *Sandbox) SetWebhookURL(provider, url string) {
	s.hooks.setURL(provider, url)
}

// Close stops the webhook workers and pending settlements and waits for them.
// Undelivered webhooks are dropped.
func (s *Sandbox) Close() {
	s.cancel()
	s.hooks.wait()
	s.timers.Wait()
}

// ListenAndServe serves s.Handler on addr until ctx ends, then shuts the
// server down and closes s.
func ListenAndServe(ctx context.Context, addr string, s *Sandbox) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return Serve(ctx, ln, s)
}

// Serve serves s.Handler on ln until ctx ends, then shuts the server down
// and closes s. Requests held by the hang fault are answered 503 at once, so
// shutting down does not wait for their clients to give up.
func Serve(ctx context.Context, ln net.Listener, s *Sandbox) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		s.Close()
		return err
	case <-ctx.Done():
	}
	s.cancel() // releases hanging requests and pending work
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	s.Close()
	return err
}

// after runs f after d unless the sandbox is closed first.
func (s *Sandbox) after(d time.Duration, f func()) {
	s.timers.Add(1)
	go func() {
		defer s.timers.Done()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			f()
		case <-s.ctx.Done():
		}
	}()
}

// chance reports true with probability p.
func (s *Sandbox) chance(p float64) bool {
	if p <= 0 {
		return false
	}
	if p >= 1 {
		return true
	}
	s.rngMu.Lock()
	v := s.rng.Float64()
	s.rngMu.Unlock()
	return v < p
}

const (
	alnum     = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	upperNum  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	hexDigits = "0123456789abcdef"
)

// randString returns n random characters from alphabet.
func (s *Sandbox) randString(alphabet string, n int) string {
	b := make([]byte, n)
	s.rngMu.Lock()
	for i := range b {
		b[i] = alphabet[s.rng.IntN(len(alphabet))]
	}
	s.rngMu.Unlock()
	return string(b)
}

// uuid returns a random version-4-shaped UUID string.
func (s *Sandbox) uuid() string {
	h := s.randString(hexDigits, 32)
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}

func isUpperCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if c[i] < 'A' || c[i] > 'Z' {
			return false
		}
	}
	return true
}

// writeJSON writes v as a JSON answer with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// maxBody bounds request bodies the simulators read.
const maxBody = 1 << 20

func readBody(r *http.Request) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r.Body, maxBody))
}

// jsonInt parses a JSON number literal that is an integer (no fraction, no
// exponent, no quotes).
func jsonInt(raw json.RawMessage) (int64, bool) {
	s := string(bytes.TrimSpace(raw))
	if s == "" || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
