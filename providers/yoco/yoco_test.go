package yoco

import (
	"testing"

	"github.com/refundgate/refundgate/providers"
	"github.com/refundgate/refundgate/providers/providertest"
	"github.com/refundgate/refundgate/sandbox"
)

func TestConformance(t *testing.T) {
	for _, tt := range []struct {
		name    string
		partial bool
	}{{"FullOnly", false}, {"PartialRefunds", true}} {
		t.Run(tt.name, func(t *testing.T) {
			sb := sandbox.New(sandbox.Options{YocoPartialRefunds: tt.partial, YocoSettleDelay: 0})
			t.Cleanup(sb.Close)
			keys := sb.Keys().Yoco
			var opts map[string]any
			if tt.partial {
				opts = map[string]any{"partial_refunds": true}
			}
			providertest.Run(t, &providertest.Harness{
				Handler:   sb.Handler(),
				BasePath:  "/yoco/api",
				SecretKey: keys.TestSecretKey,
				Secrets:   []string{keys.WebhookSecret, keys.LiveSecretKey},
				New: func(baseURL, secret string) (providers.Provider, error) {
					return providers.Open(providers.Config{Name: "yoco-test", Type: Type, BaseURL: baseURL,
						SecretKey: secret, WebhookSecret: keys.WebhookSecret, Options: opts})
				},
				NewPayment: func(t *testing.T, amount int64) string {
					return sbCheckout(t, sb, amount, false)
				},
				Currency:         "ZAR",
				MissingPaymentID: "ch_missingMissingMissing0",
				ProviderRefunds: func(t *testing.T, paymentID string) []providertest.Recorded {
					var out []providertest.Recorded
					for _, r := range sb.Refunds(sandbox.ProviderYoco, paymentID) {
						out = append(out, providertest.Recorded{ID: r.ID, Amount: r.Amount})
					}
					return out
				},
			})
		})
	}
}

func sbCheckout(t *testing.T, sb *sandbox.Sandbox, amount int64, live bool) string {
	t.Helper()
	id, err := sb.CreatePayment(sandbox.ProviderYoco, amount, "ZAR", live)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
