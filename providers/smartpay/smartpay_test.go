package smartpay_test

import (
	"testing"

	"github.com/refundgate/refundgate/providers"
	"github.com/refundgate/refundgate/providers/providertest"
	"github.com/refundgate/refundgate/providers/smartpay"
	"github.com/refundgate/refundgate/sandbox"
)

func TestConformance(t *testing.T) {
	sb := sandbox.New(sandbox.Options{})
	t.Cleanup(sb.Close)
	keys := sb.Keys().Smartpay
	providertest.Run(t, &providertest.Harness{
		Handler:   sb.Handler(),
		BasePath:  "/smartpay/v1",
		SecretKey: keys.TestSecretKey,
		Secrets:   []string{keys.WebhookSecret},
		New: func(baseURL, secret string) (providers.Provider, error) {
			return providers.Open(providers.Config{Name: "smartpay-test", Type: smartpay.Type, BaseURL: baseURL,
				SecretKey: secret, WebhookSecret: keys.WebhookSecret})
		},
		NewPayment: func(t *testing.T, amount int64) string {
			id, err := sb.CreatePayment(sandbox.ProviderSmartpay, amount, "JPY", false)
			if err != nil {
				t.Fatal(err)
			}
			return id
		},
		Currency:         "JPY",
		MissingPaymentID: "payment_test_missingMissingMissing00",
		ProviderRefunds: func(t *testing.T, paymentID string) []providertest.Recorded {
			var out []providertest.Recorded
			for _, r := range sb.Refunds(sandbox.ProviderSmartpay, paymentID) {
				out = append(out, providertest.Recorded{ID: r.ID, Amount: r.Amount})
			}
			return out
		},
	})
}
