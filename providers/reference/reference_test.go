package reference_test

import (
	"testing"

	"github.com/refundgate/refundgate/providers"
	"github.com/refundgate/refundgate/providers/providertest"
	"github.com/refundgate/refundgate/providers/reference"
)

func TestConformance(t *testing.T) {
	const key = "sk_ref_test_0123456789abcdef"
	srv := reference.NewServer(key)
	providertest.Run(t, &providertest.Harness{
		Handler:   srv,
		SecretKey: key,
		New: func(baseURL, secret string) (providers.Provider, error) {
			return providers.Open(providers.Config{Name: "ref", Type: reference.Type, BaseURL: baseURL, SecretKey: secret})
		},
		NewPayment:       func(t *testing.T, amount int64) string { return srv.CreatePayment(amount, "ZAR") },
		Currency:         "ZAR",
		MissingPaymentID: "pay_ref_missing",
		ProviderRefunds: func(t *testing.T, paymentID string) []providertest.Recorded {
			var out []providertest.Recorded
			for _, a := range srv.RefundAmounts(paymentID) {
				out = append(out, providertest.Recorded{Amount: a})
			}
			return out
		},
	})
}
