package sandbox

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func parseFlags(args ...string) (Options, error) {
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	build := BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return Options{}, err
	}
	return build()
}

func TestBindFlags(t *testing.T) {
	o, err := parseFlags()
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(DefaultKeys(), New(o).Keys()); d != "" {
		t.Errorf("no flags: keys (-default +got):\n%s", d)
	}
	o, err = parseFlags(
		"--yoco-test-key", "sk_test_flag", "--checkoutcom-test-key", "sk_test_11111111-2222-3333-4444-555555555555",
		"--smartpay-webhook-secret", "AbC9", "--yoco-webhook-secret", "whsec_ZmxhZy1zZWNyZXQ=",
		"--yoco-partial-refunds", "--yoco-live-refunds-only", "--yoco-settle-delay", "2s",
		"--yoco-reversed-rate", "0.5", "--yoco-failed-rate", "0.1", "--webhook-duplicate-rate", "0.2",
		"--webhook-retry", "0,10ms, 1s", "--fault", "checkoutcom:error_500:0.1", "--fault", "yoco:latency:1:250",
		"--webhook", "smartpay=http://127.0.0.1:1/hook", "--seed", "9", "--webhook-workers", "32",
	)
	if err != nil {
		t.Fatal(err)
	}
	want := Options{
		YocoPartialRefunds: true, YocoLiveRefundsOnly: true, YocoSettleDelay: 2 * time.Second,
		YocoReversedRate: 0.5, YocoFailedRate: 0.1, WebhookDuplicateRate: 0.2,
		WebhookRetry: []time.Duration{0, 10 * time.Millisecond, time.Second},
		Faults: []Fault{
			{Provider: ProviderCheckoutCom, Mode: FaultError500, Rate: 0.1},
			{Provider: ProviderYoco, Mode: FaultLatency, Rate: 1, LatencyMS: 250},
		},
		WebhookURLs:    map[string]string{ProviderSmartpay: "http://127.0.0.1:1/hook"},
		Seed:           9,
		WebhookWorkers: 32,
	}
	if d := cmp.Diff(want, o, cmpopts.IgnoreFields(Options{}, "Keys")); d != "" {
		t.Errorf("options (-want +got):\n%s", d)
	}
	sb := New(o)
	defer sb.Close()
	wantKeys := DefaultKeys()
	wantKeys.Yoco.TestSecretKey = "sk_test_flag"
	wantKeys.Yoco.WebhookSecret = "whsec_ZmxhZy1zZWNyZXQ="
	wantKeys.CheckoutCom.TestSecretKey = "sk_test_11111111-2222-3333-4444-555555555555"
	wantKeys.CheckoutCom.WebhookSecret = wantKeys.CheckoutCom.TestSecretKey // it signs
	wantKeys.Smartpay.WebhookSecret = "AbC9"
	if d := cmp.Diff(wantKeys, sb.Keys()); d != "" {
		t.Errorf("keys (-want +got):\n%s", d)
	}
	byProvider := cmpopts.SortSlices(func(a, b Fault) bool { return a.Provider < b.Provider })
	if d := cmp.Diff(want.Faults, sb.Faults(), byProvider); d != "" {
		t.Errorf("faults at start (-want +got):\n%s", d)
	}
	if u := sb.hooks.url(ProviderSmartpay); u != "http://127.0.0.1:1/hook" {
		t.Errorf("webhook URL %q", u)
	}
}

func TestBindFlagsRefusesBadValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--fault", "yoco:explode:1"}, "unknown mode"},
		{[]string{"--fault", "stripe:error_500:1"}, "unknown provider"},
		{[]string{"--fault", "yoco:error_500"}, "provider:mode:rate"},
		{[]string{"--fault", "yoco:error_500:2"}, "rate"},
		{[]string{"--fault", "yoco:latency:1:x"}, "latency_ms"},
		{[]string{"--webhook", "yoco"}, "provider=url"},
		{[]string{"--webhook", "stripe=http://x"}, "unknown provider"},
		{[]string{"--webhook-retry", "0,soon"}, "--webhook-retry"},
		{[]string{"--yoco-failed-rate", "1.5"}, "--yoco-failed-rate"},
		{[]string{"--webhook-duplicate-rate", "-1"}, "--webhook-duplicate-rate"},
		{[]string{"--yoco-webhook-secret", "not-whsec"}, "whsec_"},
		{[]string{"--yoco-webhook-secret", "whsec_!!!"}, "whsec_"},
		{[]string{"--smartpay-webhook-secret", "has-dash"}, "base62"},
		{[]string{"--yoco-settle-delay", "-1s"}, "--yoco-settle-delay"},
		{[]string{"--webhook-workers", "-1"}, "--webhook-workers"},
	} {
		_, err := parseFlags(tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%v: err %v, want one mentioning %q", tc.args, err, tc.msg)
		}
	}
}
