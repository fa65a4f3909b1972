package main

import (
	"fmt"
	"sort"
	"strings"
)

// loadProvider is how the harness drives refunds of one provider's
// payments: the sandbox pool, the gateway's create body, and the same
// refund sent straight to the sandbox provider.
type loadProvider struct {
	// Name is the sandbox's provider and the gateway account's type;
	// Account is the gateway's account for it (routes and webhooks).
	Name, Account string
	// Pool names the payments in the log.
	Pool     string
	Currency string
	// Auth is the sandbox's Authorization value for the raw secret key.
	Auth func(secret string) string
	// RefundPath is the sandbox path that refunds payment; AppendRefund
	// appends the body of a 1-unit refund of it, ref its unique reference.
	RefundPath   func(payment string) string
	AppendRefund func(b []byte, payment string, ref []byte) []byte
	// OnePerPayment says a payment takes one refund only, of its whole
	// amount (Yoco refunds whole checkouts): the create body has no
	// amount, and every refund the harness sends, to the gateway or to the
	// provider, gets a payment of its own (see freshPayments).
	OnePerPayment bool
	// IdempotencyKey says the gateway's adapter sends an Idempotency-Key
	// header; the refunds sent straight to the provider carry one too,
	// their unique reference, so that the provider does the same work.
	IdempotencyKey bool
}

// loadProviders are the providers the harness can drive.
var loadProviders = map[string]*loadProvider{
	"checkoutcom": {
		Name: "checkoutcom", Account: "checkoutcom-sandbox", Pool: "Checkout.com charges", Currency: "EUR",
		Auth:       func(secret string) string { return secret },
		RefundPath: func(payment string) string { return "/checkoutcom/v2/charges/" + payment + "/refund" },
		AppendRefund: func(b []byte, _ string, ref []byte) []byte {
			b = append(b, `{"value":1,"trackId":"`...)
			b = append(b, ref...)
			return append(b, `"}`...)
		},
	},
	"smartpay": {
		Name: "smartpay", Account: "smartpay-sandbox", Pool: "Smartpay payments", Currency: "JPY",
		Auth:       func(secret string) string { return "Basic " + secret },
		RefundPath: func(string) string { return "/smartpay/v1/refunds" },
		AppendRefund: func(b []byte, payment string, ref []byte) []byte {
			b = append(b, `{"payment":`...)
			b = append(b, jsonString(payment)...)
			b = append(b, `,"amount":1,"currency":"JPY","reason":"requested_by_customer","reference":"`...)
			b = append(b, ref...)
			return append(b, `"}`...)
		},
		IdempotencyKey: true,
	},
	"yoco": {
		Name: "yoco", Account: "yoco-sandbox", Pool: "Yoco checkouts", Currency: "ZAR",
		Auth:       func(secret string) string { return "Bearer " + secret },
		RefundPath: func(payment string) string { return "/yoco/api/checkouts/" + payment + "/refund" },
		AppendRefund: func(b []byte, _ string, ref []byte) []byte {
			b = append(b, `{"metadata":{"refundgate_refund_id":"`...)
			b = append(b, ref...)
			return append(b, `","refundgate_reference":"bench"}}`...)
		},
		OnePerPayment:  true,
		IdempotencyKey: true,
	},
}

// providerNamed returns the load provider called name, or an error that
// lists the ones there are.
func providerNamed(name string) (*loadProvider, error) {
	if p, ok := loadProviders[name]; ok {
		return p, nil
	}
	names := make([]string, 0, len(loadProviders))
	for n := range loadProviders {
		names = append(names, n)
	}
	sort.Strings(names)
	return nil, fmt.Errorf("--provider must be one of %s, not %q", strings.Join(names, ", "), name)
}

// createBody is the gateway's create body for a 1-unit refund of payment,
// or for the whole payment when it takes one refund only.
func (p *loadProvider) createBody(payment string) string {
	if p.OnePerPayment {
		return fmt.Sprintf(`{"payment_id":%s,"currency":%q,"reference":"bench"}`, jsonString(payment), p.Currency)
	}
	return fmt.Sprintf(`{"payment_id":%s,"amount":1,"currency":%q,"reference":"bench"}`, jsonString(payment), p.Currency)
}
