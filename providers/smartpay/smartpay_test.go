package smartpay

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/providers"
	"github.com/refundgate/refundgate/providers/providertest"
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
			return providers.Open(providers.Config{Name: "smartpay-test", Type: Type, BaseURL: baseURL,
				SecretKey: secret, WebhookSecret: keys.WebhookSecret})
		},
		NewPayment: func(t *testing.T, amount int64) string {
			return sbPayment(t, sb, amount, false)
		},
		NewOtherModePayment: func(t *testing.T, amount int64) string {
			return sbPayment(t, sb, amount, true)
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

// Helpers.

const (
	testKey       = "sk_test_unitKey0123456789abcdefXYZ"
	liveKey       = "sk_live_unitKey0123456789abcdefXYZ"
	webhookSecret = "gE8pXq2LzR7wV4nK9tY3bM6cJ1hF5sD0aU"
)

func sbPayment(t *testing.T, sb *sandbox.Sandbox, amount int64, live bool) string {
	t.Helper()
	id, err := sb.CreatePayment(sandbox.ProviderSmartpay, amount, "JPY", live)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func golden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func open(t *testing.T, baseURL, key string) *Client {
	t.Helper()
	p, err := providers.Open(providers.Config{Name: "sp", Type: Type, BaseURL: baseURL, SecretKey: key, WebhookSecret: webhookSecret})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Client)
}

// recorded is one request a fake Smartpay saw.
type recorded struct {
	method, path, query string
	header              http.Header
	body                []byte
}

// fake is an httptest Smartpay answering every request with status and
// body, recording what it saw.
type fake struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

func newFake(t *testing.T, h func(r *http.Request, body []byte) (int, []byte)) *fake {
	t.Helper()
	f := &fake{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), b})
		f.mu.Unlock()
		status, body := h(r, b)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Request-Id", "req_unit_1")
		w.WriteHeader(status)
		w.Write(body)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fake) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func request(paymentID string) *normalize.RefundRequest {
	return &normalize.RefundRequest{RefundID: "rf_unit_1", PaymentID: paymentID, Amount: 500, Currency: "JPY",
		Reason: normalize.ReasonRequestedByCustomer, Reference: "ORDER-1042", Metadata: map[string]string{"order": "1042"}}
}

// Golden tests: the documented bodies through the wire types and mapping.

func TestGoldenRefund(t *testing.T) {
	tests := []struct {
		file string
		want *normalize.ProviderRefund
	}{
		{"refund.json", &normalize.ProviderRefund{ProviderRefundID: "refund_test_a1B2c3D4e5F6g7H8i9J0kL",
			Status: normalize.StatusSucceeded, ProviderStatus: "succeeded", Amount: 500, Currency: "JPY"}},
		{"refund_failed.json", &normalize.ProviderRefund{ProviderRefundID: "refund_live_Q1w2E3r4T5y6U7i8O9p0aS",
			Status: normalize.StatusFailed, ProviderStatus: "failed", Amount: 1200, Currency: "JPY", Livemode: true,
			Failure: &normalize.Failure{Code: normalize.CodeRefundDeclined, Message: "Smartpay did not complete the refund", ProviderCode: "failed"}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var w wireRefund
			if err := json.Unmarshal(golden(t, tt.file), &w); err != nil {
				t.Fatal(err)
			}
			got, err := w.normalize("")
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("normalize (-want +got):\n%s", d)
			}
		})
	}
}

// TestRefundAnswers sends refunds to a fake Smartpay answering the
// documented refund objects: succeeded and failed map to a result, not an
// error.
func TestRefundAnswers(t *testing.T) {
	for _, file := range []string{"refund.json", "refund_failed.json"} {
		f := newFake(t, func(*http.Request, []byte) (int, []byte) { return 200, golden(t, file) })
		got, err := open(t, f.URL, testKey).Refund(context.Background(), request("payment_test_z9Y8x7W6v5U4t3S2r1Q0pO"))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if file == "refund_failed.json" && (got.Status != normalize.StatusFailed || got.Failure == nil || got.Failure.Code != normalize.CodeRefundDeclined) {
			t.Errorf("failed refund mapped to %+v", got)
		}
		if file == "refund.json" && got.Status != normalize.StatusSucceeded {
			t.Errorf("succeeded refund mapped to %+v", got)
		}
	}
}

// TestRefundRequestWire checks what is sent: path, auth, idempotency key,
// body fields and the reserved metadata.
func TestRefundRequestWire(t *testing.T) {
	f := newFake(t, func(*http.Request, []byte) (int, []byte) { return 200, golden(t, "refund.json") })
	c := open(t, f.URL+"/v1/", testKey)
	req := request("payment_test_z9Y8x7W6v5U4t3S2r1Q0pO")
	req.Reason = normalize.ReasonDuplicate
	req.Description = "Returned item"
	req.LineItems = []normalize.LineItem{{ID: "li_test_1"}}
	for range 2 {
		if _, err := c.Refund(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	reqs := f.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	r := reqs[0]
	if r.method != "POST" || r.path != "/v1/refunds" {
		t.Errorf("request %s %s, want POST /v1/refunds", r.method, r.path)
	}
	if got := r.header.Get("Authorization"); got != "Basic "+testKey {
		t.Errorf("Authorization = %q, want the raw key after Basic", got)
	}
	if k := r.header.Get("Idempotency-Key"); k != req.IdempotencyKey() || k != reqs[1].header.Get("Idempotency-Key") {
		t.Errorf("Idempotency-Key %q then %q, want %q twice", k, reqs[1].header.Get("Idempotency-Key"), req.IdempotencyKey())
	}
	if !bytes.Equal(r.body, reqs[1].body) {
		t.Errorf("resend body differs:\n%s\n%s", r.body, reqs[1].body)
	}
	var got map[string]any
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"payment": "payment_test_z9Y8x7W6v5U4t3S2r1Q0pO", "amount": 500.0, "currency": "JPY",
		"reason": "requested_by_customer", "description": "Returned item", "reference": "ORDER-1042",
		"lineItems": []any{"li_test_1"},
		"metadata":  map[string]any{"order": "1042", "refundgate_refund_id": "rf_unit_1", "refundgate_reason": "duplicate"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("body (-want +got):\n%s", d)
	}
}

func TestFullRefundOmitsAmount(t *testing.T) {
	f := newFake(t, func(*http.Request, []byte) (int, []byte) { return 200, golden(t, "refund.json") })
	req := request("payment_test_z9Y8x7W6v5U4t3S2r1Q0pO")
	req.Amount, req.Full = 0, true
	if _, err := open(t, f.URL, testKey).Refund(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if b := f.requests()[0].body; bytes.Contains(b, []byte(`"amount"`)) {
		t.Errorf("a full refund of unknown amount sent an amount: %s", b)
	}
}

// TestReasonTable checks the documented reason table and that each reason
// goes out as a reason Smartpay accepts with the original kept in metadata.
func TestReasonTable(t *testing.T) {
	want := map[normalize.Reason]string{
		normalize.ReasonRequestedByCustomer: "requested_by_customer",
		normalize.ReasonDuplicate:           "requested_by_customer",
		normalize.ReasonFraudulent:          "fraudulent",
		normalize.ReasonOther:               "requested_by_customer",
	}
	if d := cmp.Diff(want, reasons); d != "" {
		t.Errorf("reasons (-want +got):\n%s", d)
	}
	caps := open(t, "http://unused", testKey).Capabilities()
	if d := cmp.Diff([]normalize.Reason{normalize.ReasonRequestedByCustomer, normalize.ReasonFraudulent}, caps.Reasons); d != "" {
		t.Errorf("Capabilities.Reasons (-want +got):\n%s", d)
	}
	for _, r := range normalize.Reasons {
		t.Run(string(r), func(t *testing.T) {
			req := request("payment_test_x")
			req.Reason = r
			body, err := buildRefundRequest(req, "JPY")
			if err != nil {
				t.Fatal(err)
			}
			if body.Reason != want[r] {
				t.Errorf("reason sent %q, want %q", body.Reason, want[r])
			}
			if body.Metadata[metaReason] != string(r) || body.Metadata[metaRefundID] != req.RefundID {
				t.Errorf("metadata %v, want %s=%s and %s=%s", body.Metadata, metaReason, r, metaRefundID, req.RefundID)
			}
		})
	}
	req := request("payment_test_x")
	req.Reason = ""
	if body, err := buildRefundRequest(req, "JPY"); err != nil || body.Reason != "requested_by_customer" {
		t.Errorf("empty reason: %v %v, want requested_by_customer", body, err)
	}
}

// TestAmountConversion: amounts go through the ISO 4217 exponent, never
// assuming cents: JPY has no decimals, USD two, KWD three.
func TestAmountConversion(t *testing.T) {
	tests := []struct {
		minor    int64
		currency string
		wire     json.Number
	}{
		{500, "JPY", "500"},
		{1, "JPY", "1"},
		{1234, "USD", "12.34"},
		{1200, "USD", "12"},
		{1250, "USD", "12.5"},
		{5, "USD", "0.05"},
		{1234, "KWD", "1.234"},
	}
	for _, tt := range tests {
		got, err := toWire(tt.minor, tt.currency)
		if err != nil || got != tt.wire {
			t.Errorf("toWire(%d, %s) = %q, %v; want %q", tt.minor, tt.currency, got, err, tt.wire)
		}
		back, err := fromWire(tt.wire, tt.currency)
		if err != nil || back != tt.minor {
			t.Errorf("fromWire(%q, %s) = %d, %v; want %d", tt.wire, tt.currency, back, err, tt.minor)
		}
	}
	for _, bad := range []struct {
		n json.Number
		c string
	}{{"12.5", "JPY"}, {"1.234", "USD"}, {"x", "JPY"}, {"1", "XXX"}} {
		if v, err := fromWire(bad.n, bad.c); err == nil {
			t.Errorf("fromWire(%q, %s) = %d, want an error", bad.n, bad.c, v)
		}
	}
	if v, err := fromWire("1.5e3", "JPY"); err != nil || v != 1500 {
		t.Errorf("fromWire(1.5e3, JPY) = %d, %v", v, err)
	}
}

// TestTwoDecimalCurrency sends a USD refund end to end: 1234 cents go out
// as 12.34 and 12.34 comes back as 1234.
func TestTwoDecimalCurrency(t *testing.T) {
	f := newFake(t, func(_ *http.Request, body []byte) (int, []byte) {
		return 200, []byte(`{"id":"refund_test_usd","object":"refund","amount":12.34,"currency":"USD","payment":"payment_test_usd","reason":"requested_by_customer","metadata":{},"status":"succeeded","test":true}`)
	})
	req := request("payment_test_usd")
	req.Amount, req.Currency = 1234, "USD"
	got, err := open(t, f.URL, testKey).Refund(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(f.requests()[0].body, []byte(`"amount":12.34,`)) {
		t.Errorf("body %s, want amount 12.34", f.requests()[0].body)
	}
	if got.Amount != 1234 || got.Currency != "USD" {
		t.Errorf("got %d %s, want 1234 USD", got.Amount, got.Currency)
	}
}

// TestErrors classifies every documented error status and body, and the
// undocumented ones defensively.
func TestErrors(t *testing.T) {
	tests := []struct {
		name         string
		status       int
		body         []byte
		code         normalize.Code
		outcome      providers.Outcome
		providerCode string
		details      []normalize.FieldError
	}{
		{"404 payment.not-found", 404, golden(t, "error_payment_not_found.json"), normalize.CodePaymentNotFound, providers.OutcomeDeclined, "payment.not-found", nil},
		{"403 amount.insufficient", 403, golden(t, "error_amount_insufficient.json"), normalize.CodeAmountExceedsRefundable, providers.OutcomeDeclined, "amount.insufficient", nil},
		{"400 request.invalid", 400, golden(t, "error_request_invalid.json"), normalize.CodeValidationFailed, providers.OutcomeDeclined, "request.invalid",
			[]normalize.FieldError{
				{Field: "currency", Code: "invalid", Message: "currency is required"},
				{Field: "reason", Code: "invalid", Message: "reason must be one of requested_by_customer, fraudulent"},
				{Field: "line_items", Code: "invalid", Message: "lineItems must be an array of ids"},
			}},
		{"400 object details", 400, []byte(`{"errorCode":"request.invalid","message":"bad","details":[{"field":"metadata.k","message":"too long"},42]}`),
			normalize.CodeValidationFailed, providers.OutcomeDeclined, "request.invalid",
			[]normalize.FieldError{{Field: "metadata.k", Code: "invalid", Message: "too long"}, {Field: "request", Code: "invalid", Message: "42"}}},
		{"401", 401, golden(t, "error_unauthorized.json"), normalize.CodeProviderAuthFailed, providers.OutcomeDeclined, "unauthorized", nil},
		{"401 no body", 401, nil, normalize.CodeProviderAuthFailed, providers.OutcomeDeclined, "", nil},
		{"403 other", 403, []byte(`{"errorCode":"forbidden","message":"no"}`), normalize.CodeProviderAuthFailed, providers.OutcomeDeclined, "forbidden", nil},
		{"404 html", 404, []byte(`<html>not found</html>`), normalize.CodeProviderError, providers.OutcomeDeclined, "", nil},
		{"409 in flight", 409, []byte(`{"errorCode":"request.conflict","message":"in flight"}`), normalize.CodeProviderUnavailable, providers.OutcomeRetryLater, "request.conflict", nil},
		{"422 key mismatch", 422, []byte(`{"errorCode":"idempotency-key.mismatch","message":"mismatch"}`), normalize.CodeProviderError, providers.OutcomeUnknown, "idempotency-key.mismatch", nil},
		{"429", 429, []byte(`{"message":"slow down"}`), normalize.CodeRateLimited, providers.OutcomeRetryLater, "", nil},
		{"500", 500, []byte(`{"errorCode":"unexpected_error"}`), normalize.CodeProviderError, providers.OutcomeUnknown, "unexpected_error", nil},
		{"502 html", 502, []byte(`<html>bad gateway</html>`), normalize.CodeProviderError, providers.OutcomeUnknown, "", nil},
		{"302", 302, nil, normalize.CodeProviderError, providers.OutcomeUnknown, "", nil},
		{"200 garbage", 200, []byte(`{"id":`), normalize.CodeProviderError, providers.OutcomeUnknown, "", nil},
		{"200 bad amount", 200, []byte(`{"id":"refund_test_x","amount":1.5,"currency":"JPY","status":"succeeded"}`), normalize.CodeProviderError, providers.OutcomeUnknown, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, func(*http.Request, []byte) (int, []byte) { return tt.status, tt.body })
			c := open(t, f.URL, testKey)
			_, err := c.Refund(context.Background(), request("payment_test_z9Y8x7W6v5U4t3S2r1Q0pO"))
			var pe *providers.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *providers.Error", err)
			}
			if c.ErrorCode(err) != tt.code || pe.Outcome != tt.outcome || pe.ProviderCode != tt.providerCode {
				t.Errorf("got code %s outcome %v provider code %q, want %s %v %q", c.ErrorCode(err), pe.Outcome, pe.ProviderCode, tt.code, tt.outcome, tt.providerCode)
			}
			if tt.status != 200 && pe.StatusCode != tt.status {
				t.Errorf("StatusCode = %d, want %d", pe.StatusCode, tt.status)
			}
			if want := providers.Excerpt(tt.body); pe.Body != want {
				t.Errorf("body excerpt %q, want %q", pe.Body, want)
			}
			if d := cmp.Diff(tt.details, pe.Details); d != "" {
				t.Errorf("Details (-want +got):\n%s", d)
			}
			if tt.status == 400 && pe.RequestID != "req_unit_1" {
				t.Errorf("RequestID = %q", pe.RequestID)
			}
		})
	}
}

// TestModeMismatch: a payment id of the other mode than the key is refused
// before any HTTP request, by Refund and Lookup alike.
func TestModeMismatch(t *testing.T) {
	f := newFake(t, func(*http.Request, []byte) (int, []byte) { return 500, nil })
	for _, tt := range []struct{ key, payment string }{
		{testKey, "payment_live_m1N2b3V4c5X6z7L8k9J0hG"},
		{liveKey, "payment_test_z9Y8x7W6v5U4t3S2r1Q0pO"},
	} {
		c := open(t, f.URL, tt.key)
		_, err := c.Refund(context.Background(), request(tt.payment))
		var ne *normalize.Error
		if !errors.As(err, &ne) || ne.Code != normalize.CodeModeMismatch || ne.Param != "payment_id" {
			t.Errorf("Refund %s with %s: %v, want mode_mismatch on payment_id", tt.payment, tt.key[:8], err)
		}
		if providers.OutcomeOf(err) != providers.OutcomeNotSent || c.ErrorCode(err) != normalize.CodeModeMismatch {
			t.Errorf("outcome %v code %s", providers.OutcomeOf(err), c.ErrorCode(err))
		}
		_, err = c.Lookup(context.Background(), normalize.LookupRef{PaymentID: tt.payment, RefundID: "rf_x"})
		if c.ErrorCode(err) != normalize.CodeModeMismatch {
			t.Errorf("Lookup: %v, want mode_mismatch", err)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Fatalf("%d HTTP requests, want 0", n)
	}
	if c := open(t, f.URL, liveKey); !c.Capabilities().Livemode {
		t.Error("a sk_live_ key is not Livemode")
	}
	if c := open(t, f.URL, testKey); c.Capabilities().Livemode {
		t.Error("a sk_test_ key is Livemode")
	}
}

// TestLocalRefusals: what Smartpay cannot carry is refused before any
// request.
func TestLocalRefusals(t *testing.T) {
	f := newFake(t, func(*http.Request, []byte) (int, []byte) { return 500, nil })
	c := open(t, f.URL, testKey)
	many := map[string]string{}
	for i := range 19 {
		many[fmt.Sprintf("k%d", i)] = "v"
	}
	tests := []struct {
		name  string
		edit  func(*normalize.RefundRequest)
		code  normalize.Code
		param string
	}{
		{"19 metadata pairs", func(r *normalize.RefundRequest) { r.Metadata = many }, normalize.CodeProviderLimitExceeded, "metadata"},
		{"description 81", func(r *normalize.RefundRequest) { r.Description = strings.Repeat("d", 81) }, normalize.CodeProviderLimitExceeded, "description"},
		{"reference 41", func(r *normalize.RefundRequest) { r.Reference = strings.Repeat("r", 41) }, normalize.CodeProviderLimitExceeded, "reference"},
		{"unknown currency", func(r *normalize.RefundRequest) { r.Currency = "jpy" }, normalize.CodeValidationFailed, "currency"},
		{"bad reason", func(r *normalize.RefundRequest) { r.Reason = "whim" }, normalize.CodeValidationFailed, "reason"},
		{"zero partial", func(r *normalize.RefundRequest) { r.Amount = 0 }, normalize.CodeValidationFailed, "amount"},
		{"reserved metadata key", func(r *normalize.RefundRequest) { r.Metadata = map[string]string{"refundgate_reason": "mine"} },
			normalize.CodeProviderLimitExceeded, "metadata.refundgate_reason"},
		{"line item amount", func(r *normalize.RefundRequest) {
			n := int64(500)
			r.LineItems = []normalize.LineItem{{ID: "li_1"}, {ID: "li_2", Amount: &n}}
		}, normalize.CodeProviderLimitExceeded, "line_items[1].amount"},
		{"line item quantity", func(r *normalize.RefundRequest) {
			n := int64(1)
			r.LineItems = []normalize.LineItem{{ID: "li_1", Quantity: &n}}
		}, normalize.CodeProviderLimitExceeded, "line_items[0].quantity"},
	}
	for _, tt := range tests {
		req := request("payment_test_z9Y8x7W6v5U4t3S2r1Q0pO")
		tt.edit(req)
		_, err := c.Refund(context.Background(), req)
		var ne *normalize.Error
		if !errors.As(err, &ne) || ne.Code != tt.code || ne.Param != tt.param {
			t.Errorf("%s: %v, want %s on %s", tt.name, err, tt.code, tt.param)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Fatalf("%d HTTP requests, want 0", n)
	}
	req := request("payment_test_z9Y8x7W6v5U4t3S2r1Q0pO")
	req.Description, req.Reference = strings.Repeat("d", 80), strings.Repeat("r", 40)
	for i := range 18 {
		req.Metadata[fmt.Sprintf("k%d", i)] = "v"
	}
	delete(req.Metadata, "order")
	if _, err := c.Refund(context.Background(), req); providers.OutcomeOf(err) != providers.OutcomeUnknown {
		t.Errorf("a request at the limits was refused locally: %v", err)
	}
}

// TestCurrencyLookedUp: without a currency the adapter reads the payment
// first, and a failure there is never an unknown outcome.
func TestCurrencyLookedUp(t *testing.T) {
	sb := sandbox.New(sandbox.Options{})
	t.Cleanup(sb.Close)
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	c := open(t, srv.URL+"/smartpay/v1", sb.Keys().Smartpay.TestSecretKey)
	pay := sbPayment(t, sb, 1000, false)
	req := request(pay)
	req.Currency = ""
	got, err := c.Refund(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got.Currency != "JPY" || got.Amount != 500 {
		t.Errorf("got %d %s, want 500 JPY", got.Amount, got.Currency)
	}

	f := newFake(t, func(*http.Request, []byte) (int, []byte) { return 503, nil })
	_, err = open(t, f.URL, testKey).Refund(context.Background(), req)
	if providers.OutcomeOf(err) != providers.OutcomeNotSent {
		t.Errorf("payment read failing with 503: outcome %v, want not_sent (%v)", providers.OutcomeOf(err), err)
	}
	for _, r := range f.requests() {
		if r.method == "POST" {
			t.Errorf("a refund was sent after the payment read failed")
		}
	}
}

// stripPayment wraps the sandbox so that GET /payments/{id} answers as a
// terser Smartpay might: refunds as bare ids and no refundedAmount. Lookup
// must then list the payment's refunds, page by page.
func stripPayment(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/payments/") {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		var p map[string]any
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &p) != nil {
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
			return
		}
		var ids []any
		for _, rf := range p["refunds"].([]any) {
			ids = append(ids, rf.(map[string]any)["id"])
		}
		p["refunds"] = ids
		delete(p, "refundedAmount")
		b, _ := json.Marshal(p)
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	})
}

// TestLookupPaginates finds, among 150 refunds listed newest first 100 a
// page, the oldest one by the gateway's refund id and by provider id, and
// sums the refunded amount from the list.
func TestLookupPaginates(t *testing.T) {
	sb := sandbox.New(sandbox.Options{})
	t.Cleanup(sb.Close)
	proxy := providertest.NewProxy(stripPayment(sb.Handler()))
	t.Cleanup(proxy.Close)
	c := open(t, proxy.URL+"/smartpay/v1", sb.Keys().Smartpay.TestSecretKey)
	pay := sbPayment(t, sb, 1000, false)
	var first *normalize.ProviderRefund
	for i := range 150 {
		req := request(pay)
		req.RefundID, req.Amount = "rf_page_"+strconv.Itoa(i), 2
		got, err := c.Refund(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = got
		}
	}
	before := proxy.Requests()
	st, err := c.Lookup(context.Background(), normalize.LookupRef{PaymentID: pay, RefundID: "rf_page_0", Currency: "JPY"})
	if err != nil {
		t.Fatal(err)
	}
	if n := proxy.Requests() - before; n != 3 {
		t.Errorf("Lookup made %d requests, want 3 (payment and two pages)", n)
	}
	want := &normalize.ProviderState{PaymentID: pay, Currency: "JPY", CapturedAmount: 1000, RefundedAmount: 300,
		PaymentStatus: "succeeded", Refund: first}
	if d := cmp.Diff(want, st, cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "CapturedAt" }, cmp.Ignore())); d != "" {
		t.Errorf("Lookup (-want +got):\n%s", d)
	}
	if st.CapturedAt == nil {
		t.Error("CapturedAt is nil")
	}
	st, err = c.Lookup(context.Background(), normalize.LookupRef{PaymentID: pay, ProviderRefundID: first.ProviderRefundID})
	if err != nil || st.Refund == nil || st.Refund.ProviderRefundID != first.ProviderRefundID || st.RefundedAmount != 300 {
		t.Errorf("Lookup by provider id: %+v, %v", st, err)
	}
	st, err = c.Lookup(context.Background(), normalize.LookupRef{PaymentID: pay, ProviderRefundID: "refund_test_unknownUnknownUnknown0"})
	if err != nil || st.Refund != nil {
		t.Errorf("Lookup of an unknown refund: %+v, %v", st.Refund, err)
	}
	// A refund of another payment is not this payment's.
	other := sbPayment(t, sb, 1000, false)
	st, err = c.Lookup(context.Background(), normalize.LookupRef{PaymentID: other, ProviderRefundID: first.ProviderRefundID})
	if err != nil || st.Refund != nil || st.RefundedAmount != 0 {
		t.Errorf("Lookup of another payment's refund: %+v, %v", st, err)
	}
}

func TestGoldenPaymentIDsOnly(t *testing.T) {
	var w wirePayment
	if err := json.Unmarshal(golden(t, "payment_ids_only.json"), &w); err != nil {
		t.Fatal(err)
	}
	p, err := w.info()
	if err != nil {
		t.Fatal(err)
	}
	if p.Amount != 1500 || p.Currency != "JPY" || p.RefundedKnown || p.Live || p.Status != "succeeded" || p.CreatedAt == nil {
		t.Errorf("info = %+v", p)
	}
}

// Webhooks.

func signed(t *testing.T, secret string, body []byte, at time.Time) http.Header {
	t.Helper()
	key, err := base62Decode(secret)
	if err != nil {
		t.Fatal(err)
	}
	ts := strconv.FormatInt(at.UnixMilli(), 10)
	h := http.Header{}
	h.Set("Smartpay-Signature", hex.EncodeToString(sign(key, ts, body)))
	h.Set("Smartpay-Signature-Timestamp", ts)
	h.Set("Smartpay-Event-Id", "evt_test_Zx9Yw8Vu7Ts6Rq5Po4Nm3L")
	h.Set("Smartpay-Subscription-Id", "whsub_unit")
	return h
}

func TestBase62Decode(t *testing.T) {
	tests := []struct {
		in   string
		want []byte
	}{
		{"", []byte{}},
		{"A", []byte{0}},
		{"B", []byte{1}},
		{"9", []byte{61}},
		{"BA", []byte{62}},
		{"EI", []byte{1, 0}}, // 4*62 + 8 = 256
		{"AAB", []byte{0, 0, 1}},
	}
	for _, tt := range tests {
		got, err := base62Decode(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("base62Decode(%q) (-want +got):\n%s", tt.in, d)
		}
	}
	if _, err := base62Decode("ab-c"); err == nil {
		t.Error("a non-base62 secret decoded")
	}
}

func TestWebhookVerify(t *testing.T) {
	c := open(t, "http://unused", testKey)
	body := golden(t, "webhook_refund_created.json")
	now := time.UnixMilli(1700000000000)
	good := signed(t, webhookSecret, body, now)
	if err := c.Verify(good, body, now.Add(4*time.Minute)); err != nil {
		t.Fatalf("a documented signature fails: %v", err)
	}
	seconds := good.Clone()
	seconds.Set("Smartpay-Signature-Timestamp", strconv.FormatInt(now.Unix(), 10))
	key, _ := base62Decode(webhookSecret)
	seconds.Set("Smartpay-Signature", hex.EncodeToString(sign(key, seconds.Get("Smartpay-Signature-Timestamp"), body)))
	if err := c.Verify(seconds, body, now); err != nil {
		t.Errorf("a timestamp in seconds: %v", err)
	}
	tampered := bytes.Replace(body, []byte(`"amount":500`), []byte(`"amount":900`), 1)
	otherTS := good.Clone()
	otherTS.Set("Smartpay-Signature-Timestamp", strconv.FormatInt(now.UnixMilli()+1, 10))
	noSig := good.Clone()
	noSig.Del("Smartpay-Signature")
	for _, tt := range []struct {
		name   string
		header http.Header
		body   []byte
		now    time.Time
		want   error
	}{
		{"tampered body", good, tampered, now, ErrBadSignature},
		{"wrong secret", signed(t, "hZ3nQ8", body, now), body, now, ErrBadSignature},
		{"timestamp changed", otherTS, body, now, ErrBadSignature},
		{"no signature", noSig, body, now, ErrBadSignature},
		{"stale", good, body, now.Add(5*time.Minute + time.Second), ErrBadTimestamp},
		{"from the future", good, body, now.Add(-6 * time.Minute), ErrBadTimestamp},
		{"no timestamp", http.Header{"Smartpay-Signature": good["Smartpay-Signature"]}, body, now, ErrBadTimestamp},
	} {
		err := c.Verify(tt.header, tt.body, tt.now)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), webhookSecret) {
			t.Errorf("%s: the secret appears in %v", tt.name, err)
		}
	}
	noSecret, _ := providers.Open(providers.Config{Name: "sp", Type: Type, SecretKey: testKey})
	if err := noSecret.(providers.WebhookVerifier).Verify(good, body, now); !errors.Is(err, ErrNoWebhookSecret) {
		t.Errorf("no secret configured: %v", err)
	}
}

func TestWebhookParse(t *testing.T) {
	c := open(t, "http://unused", testKey)
	body := golden(t, "webhook_refund_created.json")
	got, err := c.Parse(signed(t, webhookSecret, body, time.Now()), body)
	if err != nil {
		t.Fatal(err)
	}
	want := []normalize.WebhookEvent{{ID: "evt_test_Zx9Yw8Vu7Ts6Rq5Po4Nm3L", Type: "refund.created",
		RefundID: "rf_01JD0000000000000000000000", ProviderRefundID: "refund_test_a1B2c3D4e5F6g7H8i9J0kL",
		PaymentID: "payment_test_z9Y8x7W6v5U4t3S2r1Q0pO", Status: normalize.StatusSucceeded, ProviderStatus: "succeeded",
		Amount: 500, Currency: "JPY"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Parse (-want +got):\n%s", d)
	}
	// Dedupe is on Smartpay-Event-Id: a redelivery (same header) has the
	// same ID, another event about the same refund another.
	again, err := c.Parse(signed(t, webhookSecret, body, time.Now().Add(time.Minute)), body)
	if err != nil || len(again) != 1 || again[0].ID != got[0].ID {
		t.Errorf("a redelivery: %+v %v, want ID %s", again, err, got[0].ID)
	}
	h := signed(t, webhookSecret, body, time.Now())
	h.Set("Smartpay-Event-Id", "evt_test_other")
	if evs, err := c.Parse(h, body); err != nil || len(evs) != 1 || evs[0].ID != "evt_test_other" {
		t.Errorf("another event id: %+v %v, want ID evt_test_other", evs, err)
	}
	other := []byte(`{"id":"evt_test_o","object":"event","event":"payment.created","eventData":{"type":"payment","data":{"id":"payment_test_x"}}}`)
	got, err = c.Parse(http.Header{}, other)
	if err != nil || len(got) != 1 || got[0].ID != "evt_test_o" || got[0].Status != "" {
		t.Errorf("a non-refund event: %+v, %v", got, err)
	}
	if _, err := c.Parse(http.Header{}, []byte(`{"id":`)); err == nil {
		t.Error("a truncated body parsed")
	}
}

// TestSandboxWebhook verifies and parses a webhook the sandbox sends after
// a refund made through the adapter.
func TestSandboxWebhook(t *testing.T) {
	type delivery struct {
		h    http.Header
		body []byte
	}
	got := make(chan delivery, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- delivery{r.Header.Clone(), b}
	}))
	t.Cleanup(hook.Close)
	sb := sandbox.New(sandbox.Options{})
	t.Cleanup(sb.Close)
	sb.SetWebhookURL(sandbox.ProviderSmartpay, hook.URL)
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	keys := sb.Keys().Smartpay
	p, err := providers.Open(providers.Config{Name: "sp", Type: Type, BaseURL: srv.URL + "/smartpay/v1",
		SecretKey: keys.TestSecretKey, WebhookSecret: keys.WebhookSecret})
	if err != nil {
		t.Fatal(err)
	}
	pay := sbPayment(t, sb, 1000, false)
	r, err := p.Refund(context.Background(), request(pay))
	if err != nil {
		t.Fatal(err)
	}
	var d delivery
	select {
	case d = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook delivered")
	}
	v := p.(providers.WebhookVerifier)
	if err := v.Verify(d.h, d.body, time.Now()); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	evs, err := v.Parse(d.h, d.body)
	if err != nil || len(evs) != 1 {
		t.Fatalf("Parse: %v %v", evs, err)
	}
	e := evs[0]
	if e.ID != d.h.Get("Smartpay-Event-Id") || e.RefundID != "rf_unit_1" || e.ProviderRefundID != r.ProviderRefundID ||
		e.PaymentID != pay || e.Status != normalize.StatusSucceeded || e.Amount != 500 {
		t.Errorf("event %+v", e)
	}
}

// TestSecretNeverInErrors: a provider echoing the key in an error body or
// details never gets it into any error text.
func TestSecretNeverInErrors(t *testing.T) {
	f := newFake(t, func(r *http.Request, _ []byte) (int, []byte) {
		auth := r.Header.Get("Authorization")
		b, _ := json.Marshal(map[string]any{"errorCode": "request.invalid", "message": "bad key " + auth,
			"details": []string{"payment " + auth, auth}})
		return 400, b
	})
	c := open(t, f.URL, testKey)
	_, err := c.Refund(context.Background(), request("payment_test_z9Y8x7W6v5U4t3S2r1Q0pO"))
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v", err)
	}
	text := fmt.Sprintf("%v %+v %#v %s %s %+v", err, err, err, pe.Body, pe.ProviderMessage, pe.Details)
	for _, s := range []string{testKey, webhookSecret} {
		if strings.Contains(text, s) {
			t.Errorf("a secret appears in the error: %s", text)
		}
	}
	if len(pe.Details) != 2 || pe.Details[0].Field != "payment_id" {
		t.Errorf("Details = %+v", pe.Details)
	}
}

func TestNewOptions(t *testing.T) {
	if _, err := providers.Open(providers.Config{Name: "sp", Type: Type, SecretKey: testKey, Options: map[string]any{"bogus": true}}); err == nil {
		t.Error("an unknown option was accepted")
	}
	p, err := providers.Open(providers.Config{Name: "sp", Type: Type, SecretKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	if c := p.(*Client); c.base != DefaultBaseURL {
		t.Errorf("base = %q", c.base)
	}
	want := providers.Capabilities{PaymentRef: providers.RefPayment, Partial: true, Multiple: true,
		Reasons:    []normalize.Reason{normalize.ReasonRequestedByCustomer, normalize.ReasonFraudulent},
		Idempotent: true, RequiresCurrency: true,
		Limits: providers.Limits{MetadataPairs: 20, ReservedMetadata: 2, DescriptionLen: 80, ReferenceLen: 40,
			ReservedKeyPrefix: "refundgate_", LineItemIDsOnly: true}}
	if d := cmp.Diff(want, p.Capabilities()); d != "" {
		t.Errorf("Capabilities (-want +got):\n%s", d)
	}
}
