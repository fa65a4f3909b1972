package sandbox

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// BindFlags defines the sandbox's command-line flags on fs (keys, Yoco
// behaviour, webhook schedule and URLs, faults set at start, random seed)
// and returns the function that, after fs.Parse, turns them into validated
// Options. Unset flags keep the Options zero values and DefaultKeys, so
// `refundgate sandbox` with no flags behaves as New(Options{}).
//
// Repeatable flags:
//
//	--fault provider:mode:rate[:latency_ms]   e.g. checkoutcom:error_500:0.1, yoco:latency:1:250
//	--webhook provider=url                    e.g. yoco=http://127.0.0.1:8080/v1/webhooks/yoco-sandbox
func BindFlags(fs *flag.FlagSet) func() (Options, error) {
	var (
		keys           Keys
		o              Options
		retry          string
		faults, hooks  multiFlag
		reversed, fail float64
		dup            float64
		seed           int64
	)
	keyFlag := func(dst *string, name, what string) {
		fs.StringVar(dst, name, "", what+" (default: the fixed sandbox key, see GET /_sandbox/keys)")
	}
	keyFlag(&keys.Yoco.TestSecretKey, "yoco-test-key", "Yoco test secret key, sk_test_…")
	keyFlag(&keys.Yoco.LiveSecretKey, "yoco-live-key", "Yoco live secret key, sk_live_…")
	keyFlag(&keys.Yoco.WebhookSecret, "yoco-webhook-secret", "Yoco webhook signing secret, whsec_<base64>")
	keyFlag(&keys.CheckoutCom.TestSecretKey, "checkoutcom-test-key", "Checkout.com test secret key, sk_test_<uuid>; also signs test webhooks")
	keyFlag(&keys.CheckoutCom.LiveSecretKey, "checkoutcom-live-key", "Checkout.com live secret key, sk_<uuid>; also signs live webhooks")
	keyFlag(&keys.Smartpay.TestSecretKey, "smartpay-test-key", "Smartpay test secret key, sk_test_…")
	keyFlag(&keys.Smartpay.LiveSecretKey, "smartpay-live-key", "Smartpay live secret key, sk_live_…")
	keyFlag(&keys.Smartpay.WebhookSecret, "smartpay-webhook-secret", "Smartpay webhook signing secret, base62")
	fs.BoolVar(&o.YocoPartialRefunds, "yoco-partial-refunds", false, "let Yoco refunds carry an amount")
	fs.BoolVar(&o.YocoLiveRefundsOnly, "yoco-live-refunds-only", false, "refuse refunds of Yoco test-mode checkouts, as the real API does")
	fs.DurationVar(&o.YocoSettleDelay, "yoco-settle-delay", 0, "time until an accepted Yoco refund is final")
	fs.Float64Var(&reversed, "yoco-reversed-rate", 0, "share of Yoco checkouts that end reversed instead of refunded, in [0,1]")
	fs.Float64Var(&fail, "yoco-failed-rate", 0, "share of accepted Yoco refunds that end failed, in [0,1]")
	fs.Float64Var(&dup, "webhook-duplicate-rate", 0, "share of delivered webhooks delivered a second time, in [0,1]")
	fs.StringVar(&retry, "webhook-retry", "", "comma-separated delays before each webhook delivery attempt (default 0,50ms,200ms,1s,5s)")
	fs.IntVar(&o.WebhookWorkers, "webhook-workers", 0, "webhook deliveries in flight at once (default 4)")
	fs.Var(&faults, "fault", "a fault set at start, provider:mode:rate[:latency_ms] (repeatable)")
	fs.Var(&hooks, "webhook", "where a provider's webhooks go, provider=url (repeatable)")
	fs.Int64Var(&seed, "seed", 0, "random seed for ids, faults and duplicates (0: random)")
	return func() (Options, error) {
		o.Keys = &keys
		o.YocoReversedRate, o.YocoFailedRate, o.WebhookDuplicateRate, o.Seed = reversed, fail, dup, seed
		for _, r := range []struct {
			name string
			v    float64
		}{{"--yoco-reversed-rate", reversed}, {"--yoco-failed-rate", fail}, {"--webhook-duplicate-rate", dup}} {
			if r.v < 0 || r.v > 1 || r.v != r.v {
				return Options{}, fmt.Errorf("%s %v is not in [0,1]", r.name, r.v)
			}
		}
		if o.YocoSettleDelay < 0 {
			return Options{}, errors.New("--yoco-settle-delay must not be negative")
		}
		if o.WebhookWorkers < 0 {
			return Options{}, errors.New("--webhook-workers must not be negative")
		}
		if retry != "" {
			for _, part := range strings.Split(retry, ",") {
				d, err := time.ParseDuration(strings.TrimSpace(part))
				if err != nil {
					return Options{}, fmt.Errorf("--webhook-retry: %v", err)
				}
				o.WebhookRetry = append(o.WebhookRetry, d)
			}
		}
		for _, s := range faults {
			f, err := ParseFault(s)
			if err != nil {
				return Options{}, fmt.Errorf("--fault %q: %v", s, err)
			}
			o.Faults = append(o.Faults, f)
		}
		for _, s := range hooks {
			p, u, ok := strings.Cut(s, "=")
			if !ok || u == "" {
				return Options{}, fmt.Errorf("--webhook %q: want provider=url", s)
			}
			if o.WebhookURLs == nil {
				o.WebhookURLs = map[string]string{}
			}
			o.WebhookURLs[p] = u
		}
		if err := o.Validate(); err != nil {
			return Options{}, errors.New(strings.TrimPrefix(err.Error(), "sandbox: "))
		}
		return o, nil
	}
}

// ParseFault parses provider:mode:rate[:latency_ms], the --fault flag's
// form, into a valid Fault.
func ParseFault(s string) (Fault, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 3 || len(parts) > 4 {
		return Fault{}, errors.New("want provider:mode:rate[:latency_ms]")
	}
	f := Fault{Provider: parts[0], Mode: parts[1]}
	var err error
	if f.Rate, err = strconv.ParseFloat(parts[2], 64); err != nil {
		return Fault{}, fmt.Errorf("rate: %v", err)
	}
	if len(parts) == 4 {
		if f.LatencyMS, err = strconv.Atoi(parts[3]); err != nil {
			return Fault{}, fmt.Errorf("latency_ms: %v", err)
		}
	}
	if err := f.validate(); err != nil {
		return Fault{}, err
	}
	return f, nil
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
