package yoco

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
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
				NewOtherModePayment: func(t *testing.T, amount int64) string {
					return sbCheckout(t, sb, amount, true)
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

// Helpers.

const (
	testKey       = "sk_test_unitKey0123456789abcdefXYZ"
	liveKey       = "sk_live_unitKey0123456789abcdefXYZ"
	webhookSecret = "whsec_dW5pdC15b2NvLXdlYmhvb2stc2VjcmV0LTAxMjM0"
)

func golden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func open(t *testing.T, baseURL, key string, opts map[string]any) *Client {
	t.Helper()
	p, err := providers.Open(providers.Config{Name: "yoco-unit", Type: Type, BaseURL: baseURL, SecretKey: key,
		WebhookSecret: webhookSecret, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Client)
}

// recorded is one request a fake Yoco saw.
type recorded struct {
	method, path string
	header       http.Header
	body         []byte
}

// fake is an httptest Yoco answering every request with status and body,
// recording what it saw.
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
		f.reqs = append(f.reqs, recorded{r.Method, r.URL.Path, r.Header.Clone(), b})
		f.mu.Unlock()
		status, body := h(r, b)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-Id", "req_unit_1")
		w.WriteHeader(status)
		w.Write(body)
	}))
	t.Cleanup(f.Close)
	return f
}

func answer(status int, body []byte) func(*http.Request, []byte) (int, []byte) {
	return func(*http.Request, []byte) (int, []byte) { return status, body }
}

func (f *fake) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func request(paymentID string) *normalize.RefundRequest {
	return &normalize.RefundRequest{RefundID: "rf_01JD3Q8Z6M2K4N7P9R1T3V5X7Z", PaymentID: paymentID, Amount: 10000, Full: true,
		Currency: "ZAR", Reason: normalize.ReasonDuplicate, Reference: "ORDER-1042", Description: "double charge",
		Metadata: map[string]string{"order": "1042"}}
}

// Capabilities and options.

// yocoLimits: no documented limits; four reserved metadata keys under
// refundgate_, and no line items field.
var yocoLimits = providers.Limits{ReservedMetadata: 4, ReservedKeyPrefix: "refundgate_", NoLineItems: true}

func TestCapabilities(t *testing.T) {
	tests := []struct {
		name string
		key  string
		opts map[string]any
		want providers.Capabilities
	}{
		{"full only by default", testKey, nil, providers.Capabilities{PaymentRef: providers.RefCheckout,
			Reasons: []normalize.Reason{}, Idempotent: true, Limits: yocoLimits}},
		{"partial refunds", liveKey, map[string]any{"partial_refunds": true}, providers.Capabilities{PaymentRef: providers.RefCheckout,
			Partial: true, Multiple: true, Reasons: []normalize.Reason{}, Idempotent: true, Livemode: true,
			Limits: yocoLimits}},
		{"partial refunds off", testKey, map[string]any{"partial_refunds": false}, providers.Capabilities{PaymentRef: providers.RefCheckout,
			Reasons: []normalize.Reason{}, Idempotent: true, Limits: yocoLimits}},
	}
	for _, tt := range tests {
		got := open(t, "http://unused", tt.key, tt.opts).Capabilities()
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("%s: Capabilities (-want +got):\n%s", tt.name, d)
		}
	}
}

func TestNewOptions(t *testing.T) {
	_, err := providers.Open(providers.Config{Name: "y", Type: Type, SecretKey: testKey,
		Options: map[string]any{"partial_refund": true}})
	if err == nil || !strings.Contains(err.Error(), "partial_refund") {
		t.Errorf("unknown option: err = %v, want an error naming it", err)
	}
	_, err = providers.Open(providers.Config{Name: "y", Type: Type, SecretKey: testKey,
		Options: map[string]any{"partial_refunds": "maybe"}})
	if err == nil {
		t.Error("partial_refunds: maybe was accepted")
	}
	c := open(t, "", testKey, nil)
	if c.base != DefaultBaseURL {
		t.Errorf("base = %q, want %q", c.base, DefaultBaseURL)
	}
	if !providers.Known(Type) {
		t.Errorf("%q is not registered", Type)
	}
}

// Golden tests: the documented bodies through the wire types and mapping.

func TestGoldenRefundAccepted(t *testing.T) {
	var w wireRefundResponse
	if err := json.Unmarshal(golden(t, "refund_accepted.json"), &w); err != nil {
		t.Fatal(err)
	}
	got := w.normalize(request("ch_9LVKD8GnAj7f39DFbn4F16bE"))
	want := &normalize.ProviderRefund{ProviderRefundID: "rfd_r72Lbce7jZ46y7HgycNJ5Fvrb", Status: normalize.StatusPending,
		ProviderStatus: "successful", Amount: 10000, Currency: "ZAR"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("202 body (-want +got):\n%s", d)
	}

	// The same body over HTTP, with the request the adapter sent.
	f := newFake(t, answer(http.StatusAccepted, golden(t, "refund_accepted.json")))
	c := open(t, f.URL, testKey, nil)
	got, err := c.Refund(context.Background(), request("ch_9LVKD8GnAj7f39DFbn4F16bE"))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Refund (-want +got):\n%s", d)
	}
}

func TestGoldenCheckout(t *testing.T) {
	tests := []struct {
		name string
		file string
		ref  normalize.LookupRef
		want *normalize.ProviderState
	}{
		{"refunded, documented fields only", "checkout_refunded.json",
			normalize.LookupRef{PaymentID: "ch_9LVKD8GnAj7f39DFbn4F16bE", RefundID: "rf_1", ProviderRefundID: "rfd_r72Lbce7jZ46y7HgycNJ5Fvrb", Amount: 10000},
			&normalize.ProviderState{PaymentID: "ch_9LVKD8GnAj7f39DFbn4F16bE", Currency: "ZAR", CapturedAmount: 10000, RefundedAmount: 10000,
				Livemode: true, PaymentStatus: "refunded",
				Refund: &normalize.ProviderRefund{ProviderRefundID: "rfd_r72Lbce7jZ46y7HgycNJ5Fvrb", Status: normalize.StatusSucceeded,
					ProviderStatus: "refunded", Amount: 10000, Currency: "ZAR", Livemode: true}}},
		{"refunded, refund id lost, amount unknown", "checkout_refunded.json",
			normalize.LookupRef{PaymentID: "ch_9LVKD8GnAj7f39DFbn4F16bE", RefundID: "rf_1"},
			&normalize.ProviderState{PaymentID: "ch_9LVKD8GnAj7f39DFbn4F16bE", Currency: "ZAR", CapturedAmount: 10000, RefundedAmount: 10000,
				Livemode: true, PaymentStatus: "refunded",
				Refund: &normalize.ProviderRefund{Status: normalize.StatusSucceeded, ProviderStatus: "refunded", Amount: 10000,
					Currency: "ZAR", Livemode: true}}},
		{"refunded, payment only", "checkout_refunded.json",
			normalize.LookupRef{PaymentID: "ch_9LVKD8GnAj7f39DFbn4F16bE"},
			&normalize.ProviderState{PaymentID: "ch_9LVKD8GnAj7f39DFbn4F16bE", Currency: "ZAR", CapturedAmount: 10000, RefundedAmount: 10000,
				Livemode: true, PaymentStatus: "refunded"}},
		{"completed after a 202: pending", "checkout_completed.json",
			normalize.LookupRef{PaymentID: "ch_9LVKD8GnAj7f39DFbn4F16bE", RefundID: "rf_1", ProviderRefundID: "rfd_r72Lbce7jZ46y7HgycNJ5Fvrb", Amount: 10000},
			&normalize.ProviderState{PaymentID: "ch_9LVKD8GnAj7f39DFbn4F16bE", Currency: "ZAR", CapturedAmount: 10000,
				PaymentStatus: "completed",
				Refund: &normalize.ProviderRefund{ProviderRefundID: "rfd_r72Lbce7jZ46y7HgycNJ5Fvrb", Status: normalize.StatusPending,
					ProviderStatus: "completed", Amount: 10000, Currency: "ZAR"}}},
		{"completed, no refund id: not found", "checkout_completed.json",
			normalize.LookupRef{PaymentID: "ch_9LVKD8GnAj7f39DFbn4F16bE", RefundID: "rf_1", Amount: 10000},
			&normalize.ProviderState{PaymentID: "ch_9LVKD8GnAj7f39DFbn4F16bE", Currency: "ZAR", CapturedAmount: 10000,
				PaymentStatus: "completed"}},
		{"sandbox list: pending refund found by the gateway's id", "checkout_sandbox_pending.json",
			normalize.LookupRef{PaymentID: "ch_9LVKD8GnAj7f39DFbn4F16bE", RefundID: "rf_01JD3Q8Z6M2K4N7P9R1T3V5X7Z"},
			&normalize.ProviderState{PaymentID: "ch_9LVKD8GnAj7f39DFbn4F16bE", Currency: "ZAR", CapturedAmount: 10000, RefundedAmount: 2500,
				PaymentStatus: "completed",
				Refund: &normalize.ProviderRefund{ProviderRefundID: "rfd_r72Lbce7jZ46y7HgycNJ5Fvrb", Status: normalize.StatusPending,
					ProviderStatus: "pending", Amount: 7500, Currency: "ZAR"}}},
		{"sandbox list: succeeded partial refund by provider id", "checkout_sandbox_pending.json",
			normalize.LookupRef{PaymentID: "ch_9LVKD8GnAj7f39DFbn4F16bE", ProviderRefundID: "rfd_first00000000000000000000"},
			&normalize.ProviderState{PaymentID: "ch_9LVKD8GnAj7f39DFbn4F16bE", Currency: "ZAR", CapturedAmount: 10000, RefundedAmount: 2500,
				PaymentStatus: "completed",
				Refund: &normalize.ProviderRefund{ProviderRefundID: "rfd_first00000000000000000000", Status: normalize.StatusSucceeded,
					ProviderStatus: "succeeded", Amount: 2500, Currency: "ZAR"}}},
		{"sandbox list is the whole truth: unknown id not found", "checkout_sandbox_pending.json",
			normalize.LookupRef{PaymentID: "ch_9LVKD8GnAj7f39DFbn4F16bE", RefundID: "rf_never", ProviderRefundID: "rfd_never"},
			&normalize.ProviderState{PaymentID: "ch_9LVKD8GnAj7f39DFbn4F16bE", Currency: "ZAR", CapturedAmount: 10000, RefundedAmount: 2500,
				PaymentStatus: "completed"}},
	}
	for _, tt := range tests {
		f := newFake(t, answer(http.StatusOK, golden(t, tt.file)))
		c := open(t, f.URL, testKey, nil)
		got, err := c.Lookup(context.Background(), tt.ref)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("%s: Lookup (-want +got):\n%s", tt.name, d)
		}
		reqs := f.requests()
		if len(reqs) != 1 || reqs[0].method != http.MethodGet || reqs[0].path != "/checkouts/ch_9LVKD8GnAj7f39DFbn4F16bE" ||
			reqs[0].header.Get("Authorization") != "Bearer "+testKey {
			t.Errorf("%s: requests = %+v, want one authenticated GET /checkouts/{id}", tt.name, reqs)
		}
	}
}

// The request on the wire.

func TestRefundRequestWire(t *testing.T) {
	tests := []struct {
		name string
		opts map[string]any
		req  func() *normalize.RefundRequest
		want string
	}{
		{"full-only account never sends amount", nil, func() *normalize.RefundRequest { return request("ch_A") },
			`{"metadata":{"order":"1042","refundgate_description":"double charge","refundgate_reason":"duplicate","refundgate_reference":"ORDER-1042","refundgate_refund_id":"rf_01JD3Q8Z6M2K4N7P9R1T3V5X7Z"}}`},
		{"partial account sends a known amount", map[string]any{"partial_refunds": true}, func() *normalize.RefundRequest {
			r := request("ch_A")
			r.Amount, r.Full = 2500, false
			return r
		}, `{"amount":2500,"metadata":{"order":"1042","refundgate_description":"double charge","refundgate_reason":"duplicate","refundgate_reference":"ORDER-1042","refundgate_refund_id":"rf_01JD3Q8Z6M2K4N7P9R1T3V5X7Z"}}`},
		{"partial account, full refund of an unknown amount", map[string]any{"partial_refunds": true}, func() *normalize.RefundRequest {
			r := request("ch_A")
			r.Amount, r.Reference, r.Reason, r.Description, r.Metadata = 0, "", "", "", nil
			return r
		}, `{"metadata":{"refundgate_refund_id":"rf_01JD3Q8Z6M2K4N7P9R1T3V5X7Z"}}`},
	}
	for _, tt := range tests {
		f := newFake(t, answer(http.StatusAccepted, golden(t, "refund_accepted.json")))
		c := open(t, f.URL, testKey, tt.opts)
		req := tt.req()
		if _, err := c.Refund(context.Background(), req); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		reqs := f.requests()
		if len(reqs) != 1 {
			t.Fatalf("%s: %d requests, want 1", tt.name, len(reqs))
		}
		r := reqs[0]
		if r.method != http.MethodPost || r.path != "/checkouts/ch_A/refund" {
			t.Errorf("%s: %s %s, want POST /checkouts/ch_A/refund", tt.name, r.method, r.path)
		}
		if got := r.header.Get("Authorization"); got != "Bearer "+testKey {
			t.Errorf("%s: Authorization = %q", tt.name, got)
		}
		if got := r.header.Get("Idempotency-Key"); got != req.IdempotencyKey() || got == "" {
			t.Errorf("%s: Idempotency-Key = %q, want %q", tt.name, got, req.IdempotencyKey())
		}
		if d := cmp.Diff(tt.want, string(r.body)); d != "" {
			t.Errorf("%s: body (-want +got):\n%s", tt.name, d)
		}
	}
}

// Local refusals: nothing is sent.

func TestLocalRefusals(t *testing.T) {
	f := newFake(t, answer(http.StatusAccepted, golden(t, "refund_accepted.json")))
	tests := []struct {
		name  string
		key   string
		opts  map[string]any
		req   func(*normalize.RefundRequest)
		code  normalize.Code
		param string
	}{
		{"partial on a full-only account", testKey, nil, func(r *normalize.RefundRequest) { r.Amount, r.Full = 2500, false },
			normalize.CodePartialRefundUnsupported, "amount"},
		{"live refund on a test key", testKey, nil, func(r *normalize.RefundRequest) { r.Livemode = true },
			normalize.CodeModeMismatch, "payment_id"},
		{"test refund on a live key", liveKey, nil, func(r *normalize.RefundRequest) { r.Livemode = false },
			normalize.CodeModeMismatch, "payment_id"},
		{"no payment id", testKey, nil, func(r *normalize.RefundRequest) { r.PaymentID = "" },
			normalize.CodeValidationFailed, "payment_id"},
		{"zero partial amount", testKey, map[string]any{"partial_refunds": true}, func(r *normalize.RefundRequest) { r.Amount, r.Full = 0, false },
			normalize.CodeValidationFailed, "amount"},
		{"negative amount", testKey, map[string]any{"partial_refunds": true}, func(r *normalize.RefundRequest) { r.Amount = -1 },
			normalize.CodeValidationFailed, "amount"},
		{"a merchant key in the adapter's namespace is refused, not overwritten", testKey, nil,
			func(r *normalize.RefundRequest) { r.Metadata = map[string]string{metaRefundID: "forged"} },
			normalize.CodeProviderLimitExceeded, "metadata.refundgate_refund_id"},
		{"line items cannot be carried", testKey, nil,
			func(r *normalize.RefundRequest) { r.LineItems = []normalize.LineItem{{ID: "sku-1"}} },
			normalize.CodeProviderLimitExceeded, "line_items"},
	}
	for _, tt := range tests {
		c := open(t, f.URL, tt.key, tt.opts)
		req := request("ch_A")
		tt.req(req)
		_, err := c.Refund(context.Background(), req)
		var ne *normalize.Error
		if !errors.As(err, &ne) || ne.Code != tt.code || ne.Param != tt.param {
			t.Errorf("%s: err = %v, want %s on %s", tt.name, err, tt.code, tt.param)
		}
		if c.ErrorCode(err) != tt.code || providers.OutcomeOf(err) != providers.OutcomeNotSent {
			t.Errorf("%s: ErrorCode %s outcome %v, want %s not_sent", tt.name, c.ErrorCode(err), providers.OutcomeOf(err), tt.code)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("refused requests made %d HTTP requests, want 0", n)
	}
	live := open(t, f.URL, liveKey, nil)
	req := request("ch_A")
	req.Livemode = true
	if _, err := live.Refund(context.Background(), req); err != nil {
		t.Errorf("live refund on a live key: %v", err)
	}
}

// Error classification.

func TestErrors(t *testing.T) {
	yocoErr := func(code, msg string) []byte {
		return []byte(fmt.Sprintf(`{"errorType":"invalid_request_error","errorCode":%q,"errorMessage":%q,"displayMessage":%q}`, code, msg, msg))
	}
	tests := []struct {
		name         string
		status       int
		body         []byte
		code         normalize.Code
		outcome      providers.Outcome
		providerCode string
	}{
		{"403 documented", http.StatusForbidden, golden(t, "error_forbidden.json"), normalize.CodeProviderAuthFailed, providers.OutcomeDeclined, "forbidden"},
		{"403 no body", http.StatusForbidden, nil, normalize.CodeProviderAuthFailed, providers.OutcomeDeclined, ""},
		{"401", http.StatusUnauthorized, []byte(`{"message":"Unauthorized"}`), normalize.CodeProviderAuthFailed, providers.OutcomeDeclined, ""},
		{"404 checkout", http.StatusNotFound, yocoErr("checkout_not_found", "No checkout"), normalize.CodePaymentNotFound, providers.OutcomeDeclined, "checkout_not_found"},
		{"404 html", http.StatusNotFound, []byte(`<html>not found</html>`), normalize.CodePaymentNotFound, providers.OutcomeDeclined, ""},
		{"409 in flight", http.StatusConflict, yocoErr("idempotency_conflict", "in flight"), normalize.CodeProviderUnavailable, providers.OutcomeRetryLater, "idempotency_conflict"},
		{"409 plain text", http.StatusConflict, []byte("Conflict"), normalize.CodeProviderUnavailable, providers.OutcomeRetryLater, ""},
		{"422 mismatch", http.StatusUnprocessableEntity, golden(t, "error_idempotency_mismatch.json"), normalize.CodeInternal, providers.OutcomeUnknown, "idempotency_key_mismatch"},
		{"422 no body", http.StatusUnprocessableEntity, nil, normalize.CodeInternal, providers.OutcomeUnknown, ""},
		{"429", http.StatusTooManyRequests, nil, normalize.CodeRateLimited, providers.OutcomeRetryLater, ""},
		{"400 already refunded", http.StatusBadRequest, golden(t, "error_already_refunded.json"), normalize.CodePaymentFullyRefunded, providers.OutcomeDeclined, "checkout_already_refunded"},
		{"400 exceeds", http.StatusBadRequest, yocoErr("refund_amount_exceeds_balance", "too much"), normalize.CodeAmountExceedsRefundable, providers.OutcomeDeclined, "refund_amount_exceeds_balance"},
		{"400 partial off", http.StatusBadRequest, yocoErr("partial_refunds_not_enabled", "off"), normalize.CodePartialRefundUnsupported, providers.OutcomeDeclined, "partial_refunds_not_enabled"},
		{"400 invalid amount", http.StatusBadRequest, yocoErr("invalid_amount", "bad"), normalize.CodeValidationFailed, providers.OutcomeDeclined, "invalid_amount"},
		{"400 not completed", http.StatusBadRequest, yocoErr("checkout_not_completed", "started"), normalize.CodeRefundDeclined, providers.OutcomeDeclined, "checkout_not_completed"},
		{"400 live checkout required", http.StatusBadRequest, yocoErr("live_checkout_required", "live keys"), normalize.CodeRefundDeclined, providers.OutcomeDeclined, "live_checkout_required"},
		{"400 unknown code", http.StatusBadRequest, yocoErr("something_new", "new"), normalize.CodeProviderError, providers.OutcomeDeclined, "something_new"},
		{"400 nested error", http.StatusBadRequest, []byte(`{"error":{"code":"checkout_already_refunded","message":"done"}}`), normalize.CodePaymentFullyRefunded, providers.OutcomeDeclined, "checkout_already_refunded"},
		{"400 code field", http.StatusBadRequest, []byte(`{"code":"refund_amount_exceeds_balance","message":"too much"}`), normalize.CodeAmountExceedsRefundable, providers.OutcomeDeclined, "refund_amount_exceeds_balance"},
		{"500", http.StatusInternalServerError, yocoErr("internal_error", "oops"), normalize.CodeProviderError, providers.OutcomeUnknown, "internal_error"},
		{"502 html", http.StatusBadGateway, []byte("<html>bad gateway</html>"), normalize.CodeProviderError, providers.OutcomeUnknown, ""},
		{"302", http.StatusFound, nil, normalize.CodeProviderError, providers.OutcomeUnknown, ""},
		{"202 unreadable", http.StatusAccepted, []byte(`{"id":"ch_A","refundId":`), normalize.CodeProviderError, providers.OutcomeUnknown, ""},
		{"202 without refund id", http.StatusAccepted, []byte(`{"id":"ch_A","status":"successful"}`), normalize.CodeProviderError, providers.OutcomeUnknown, ""},
	}
	for _, tt := range tests {
		f := newFake(t, answer(tt.status, tt.body))
		c := open(t, f.URL, testKey, nil)
		_, err := c.Refund(context.Background(), request("ch_A"))
		var pe *providers.Error
		if !errors.As(err, &pe) {
			t.Errorf("%s: err = %v, want a *providers.Error", tt.name, err)
			continue
		}
		if c.ErrorCode(err) != tt.code || pe.Outcome != tt.outcome || pe.ProviderCode != tt.providerCode {
			t.Errorf("%s: code %s outcome %v provider code %q, want %s %v %q", tt.name, c.ErrorCode(err), pe.Outcome, pe.ProviderCode,
				tt.code, tt.outcome, tt.providerCode)
		}
		if pe.StatusCode != tt.status {
			t.Errorf("%s: StatusCode = %d, want %d", tt.name, pe.StatusCode, tt.status)
		}
		if len(tt.body) > 0 && pe.Body == "" {
			t.Errorf("%s: the body excerpt is lost", tt.name)
		}
		if tt.status != http.StatusAccepted && pe.RequestID != "req_unit_1" {
			t.Errorf("%s: RequestID = %q, want req_unit_1", tt.name, pe.RequestID)
		}
		if tt.status == http.StatusUnprocessableEntity && !strings.Contains(pe.ProviderMessage, "idempotency key was reused") {
			t.Errorf("%s: ProviderMessage = %q, want it to explain the key reuse", tt.name, pe.ProviderMessage)
		}
	}
}

func TestLookupErrors(t *testing.T) {
	for _, tt := range []struct {
		status  int
		code    normalize.Code
		outcome providers.Outcome
	}{
		{http.StatusNotFound, normalize.CodePaymentNotFound, providers.OutcomeDeclined},
		{http.StatusForbidden, normalize.CodeProviderAuthFailed, providers.OutcomeDeclined},
		{http.StatusServiceUnavailable, normalize.CodeProviderError, providers.OutcomeUnknown},
	} {
		f := newFake(t, answer(tt.status, nil))
		c := open(t, f.URL, testKey, nil)
		_, err := c.Lookup(context.Background(), normalize.LookupRef{PaymentID: "ch_A"})
		if c.ErrorCode(err) != tt.code || providers.OutcomeOf(err) != tt.outcome {
			t.Errorf("Lookup %d: %v, want %s %v", tt.status, err, tt.code, tt.outcome)
		}
	}
	f := newFake(t, answer(http.StatusOK, []byte(`{"id":`)))
	c := open(t, f.URL, testKey, nil)
	if _, err := c.Lookup(context.Background(), normalize.LookupRef{PaymentID: "ch_A"}); c.ErrorCode(err) != normalize.CodeProviderError {
		t.Errorf("Lookup of an unreadable checkout: %v, want provider_error", err)
	}
	if _, err := c.Lookup(context.Background(), normalize.LookupRef{}); c.ErrorCode(err) != normalize.CodeValidationFailed {
		t.Errorf("Lookup without payment id: %v, want validation_failed", err)
	}
}

// Against the sandbox: what the conformance suite does not reach.

func sandboxClient(t *testing.T, opts sandbox.Options, clientOpts map[string]any) (*sandbox.Sandbox, *Client, *providertest.Proxy) {
	t.Helper()
	sb := sandbox.New(opts)
	t.Cleanup(sb.Close)
	proxy := providertest.NewProxy(sb.Handler())
	t.Cleanup(proxy.Close)
	p, err := providers.Open(providers.Config{Name: "yoco-sb", Type: Type, BaseURL: proxy.URL + "/yoco/api",
		SecretKey: sb.Keys().Yoco.TestSecretKey, WebhookSecret: sb.Keys().Yoco.WebhookSecret, Options: clientOpts})
	if err != nil {
		t.Fatal(err)
	}
	return sb, p.(*Client), proxy
}

// TestAppliedAnswerLostNotFinal: a refund that Yoco accepted but that has
// not settled yet, whose answer was lost, is reported pending by Lookup
// (never "not found"), and a resend under the same key is deduplicated.
func TestAppliedAnswerLostNotFinal(t *testing.T) {
	sb, c, proxy := sandboxClient(t, sandbox.Options{YocoSettleDelay: time.Hour}, nil)
	pay := sbCheckout(t, sb, 10000, false)
	req := request(pay)
	proxy.SetFault(providertest.FaultApplyThen500)
	_, err := c.Refund(context.Background(), req)
	if providers.OutcomeOf(err) != providers.OutcomeUnknown {
		t.Fatalf("applied then 500: %v, want outcome unknown", err)
	}
	proxy.SetFault(providertest.FaultNone)
	st, err := c.Lookup(context.Background(), normalize.LookupRef{PaymentID: pay, RefundID: req.RefundID, Currency: "ZAR", Amount: 10000})
	if err != nil {
		t.Fatal(err)
	}
	if st.Refund == nil || st.Refund.Status != normalize.StatusPending || st.Refund.ProviderRefundID == "" || st.Refund.Amount != 10000 {
		t.Fatalf("Lookup of a settling refund: %+v, want it pending with its id and amount", st.Refund)
	}
	if st.PaymentStatus != "completed" || st.RefundedAmount != 0 || st.CapturedAmount != 10000 || st.Livemode {
		t.Errorf("Lookup state = %+v", st)
	}
	got, err := c.Refund(context.Background(), req)
	if err != nil {
		t.Fatalf("resend under the same key: %v", err)
	}
	if got.ProviderRefundID != st.Refund.ProviderRefundID {
		t.Errorf("resend answered refund %s, want the replay of %s", got.ProviderRefundID, st.Refund.ProviderRefundID)
	}
	if n := len(sb.Refunds(sandbox.ProviderYoco, pay)); n != 1 {
		t.Errorf("sandbox holds %d refunds, want 1", n)
	}
	// A new refund id while the first settles: the sandbox says the checkout
	// is already refunded; nothing is applied.
	other := request(pay)
	other.RefundID = "rf_other"
	_, err = c.Refund(context.Background(), other)
	if c.ErrorCode(err) != normalize.CodePaymentFullyRefunded || providers.OutcomeOf(err) != providers.OutcomeDeclined {
		t.Errorf("second refund while settling: %v, want payment_fully_refunded declined", err)
	}
}

// TestReversed: a checkout refunded before settlement is "reversed", which
// is success too.
func TestReversed(t *testing.T) {
	sb, c, _ := sandboxClient(t, sandbox.Options{YocoReversedRate: 1}, nil)
	pay := sbCheckout(t, sb, 4200, false)
	req := request(pay)
	req.Amount = 4200
	pr, err := c.Refund(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Lookup(context.Background(), normalize.LookupRef{PaymentID: pay, ProviderRefundID: pr.ProviderRefundID})
	if err != nil {
		t.Fatal(err)
	}
	want := &normalize.ProviderRefund{ProviderRefundID: pr.ProviderRefundID, Status: normalize.StatusSucceeded,
		ProviderStatus: "reversed", Amount: 4200, Currency: "ZAR"}
	if d := cmp.Diff(want, st.Refund); d != "" {
		t.Errorf("Lookup refund (-want +got):\n%s", d)
	}
	if st.PaymentStatus != "reversed" || st.RefundedAmount != 4200 {
		t.Errorf("state = %+v, want reversed with 4200 refunded", st)
	}
}

// TestFailedRefundSandbox: a refund Yoco accepted (202) and then failed is
// failed in Lookup, with refund_declined, and its refund.failed webhook
// verifies and parses to the same refund; the sandbox's live-only option
// is a definite refusal.
func TestFailedRefundSandbox(t *testing.T) {
	got := make(chan []normalize.WebhookEvent, 4)
	var c *Client
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if err := c.Verify(r.Header, b, time.Now()); err != nil {
			t.Errorf("Verify: %v", err)
			return
		}
		evs, err := c.Parse(r.Header, b)
		if err != nil {
			t.Errorf("Parse: %v", err)
		}
		got <- evs
	}))
	t.Cleanup(recv.Close)
	sb, cl, _ := sandboxClient(t, sandbox.Options{YocoFailedRate: 1}, nil)
	c = cl
	sb.SetWebhookURL(sandbox.ProviderYoco, recv.URL)
	pay := sbCheckout(t, sb, 3000, false)
	req := request(pay)
	req.Amount = 3000
	pr, err := c.Refund(context.Background(), req)
	if err != nil || pr.Status != normalize.StatusPending {
		t.Fatalf("Refund: %+v %v, want accepted and pending", pr, err)
	}
	select {
	case evs := <-got:
		if len(evs) != 1 || evs[0].Type != "refund.failed" || evs[0].Status != normalize.StatusFailed || evs[0].RefundID != req.RefundID ||
			evs[0].ProviderRefundID != pr.ProviderRefundID || evs[0].PaymentID != pay || evs[0].Failure == nil ||
			evs[0].Failure.Code != normalize.CodeRefundDeclined {
			t.Errorf("event = %+v", evs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook arrived")
	}
	st, err := c.Lookup(context.Background(), normalize.LookupRef{PaymentID: pay, RefundID: req.RefundID})
	if err != nil {
		t.Fatal(err)
	}
	if st.Refund == nil || st.Refund.Status != normalize.StatusFailed || st.Refund.Failure == nil ||
		st.Refund.Failure.Code != normalize.CodeRefundDeclined || st.RefundedAmount != 0 || st.PaymentStatus != "completed" {
		t.Errorf("Lookup = %+v refund %+v, want the refund failed and nothing refunded", st, st.Refund)
	}

	sb2, c2, _ := sandboxClient(t, sandbox.Options{YocoLiveRefundsOnly: true}, nil)
	_, err = c2.Refund(context.Background(), request(sbCheckout(t, sb2, 1000, false)))
	if c2.ErrorCode(err) != normalize.CodeRefundDeclined || providers.OutcomeOf(err) != providers.OutcomeDeclined {
		t.Errorf("a test checkout on a live-only account: %v, want refund_declined declined", err)
	}
}

// TestIdempotencyMismatch: the same key with another payload is a bug of
// ours whose first request may have landed: unknown, never declined.
func TestIdempotencyMismatch(t *testing.T) {
	sb, c, _ := sandboxClient(t, sandbox.Options{}, nil)
	pay := sbCheckout(t, sb, 1000, false)
	req := request(pay)
	if _, err := c.Refund(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	req.Metadata = map[string]string{"order": "changed"}
	_, err := c.Refund(context.Background(), req)
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.StatusCode != http.StatusUnprocessableEntity || pe.Outcome != providers.OutcomeUnknown ||
		c.ErrorCode(err) != normalize.CodeInternal {
		t.Fatalf("reused key with another payload: %v, want 422 internal_error unknown", err)
	}
}

// TestPartialRefundsSandbox: amounts travel on a partial account, and the
// balance is enforced by Yoco.
func TestPartialRefundsSandbox(t *testing.T) {
	sb, c, _ := sandboxClient(t, sandbox.Options{YocoPartialRefunds: true}, map[string]any{"partial_refunds": true})
	pay := sbCheckout(t, sb, 10000, false)
	first := request(pay)
	first.RefundID, first.Amount, first.Full = "rf_p1", 6000, false
	if _, err := c.Refund(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	second := request(pay)
	second.RefundID, second.Amount, second.Full = "rf_p2", 6000, false
	_, err := c.Refund(context.Background(), second)
	if c.ErrorCode(err) != normalize.CodeAmountExceedsRefundable || providers.OutcomeOf(err) != providers.OutcomeDeclined {
		t.Fatalf("over the balance: %v, want amount_exceeds_refundable declined", err)
	}
	st, err := c.Lookup(context.Background(), normalize.LookupRef{PaymentID: pay, RefundID: "rf_p1"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Refund == nil || st.Refund.Amount != 6000 || st.Refund.Status != normalize.StatusSucceeded || st.RefundedAmount != 6000 ||
		st.PaymentStatus != "completed" {
		t.Errorf("Lookup = %+v refund %+v, want a succeeded 6000 refund of a completed checkout", st, st.Refund)
	}
	// The account says partial refunds, the sandbox does not: Yoco's 400.
	sb2, c2, _ := sandboxClient(t, sandbox.Options{}, map[string]any{"partial_refunds": true})
	pay2 := sbCheckout(t, sb2, 10000, false)
	req := request(pay2)
	req.Amount, req.Full = 2500, false
	_, err = c2.Refund(context.Background(), req)
	if c2.ErrorCode(err) != normalize.CodePartialRefundUnsupported || providers.OutcomeOf(err) != providers.OutcomeDeclined {
		t.Errorf("partial refund refused by Yoco: %v, want partial_refund_unsupported declined", err)
	}
}

// TestModeMismatchBeforeAnyRequest: a refund of the other mode than the key
// is refused before any HTTP request.
func TestModeMismatchBeforeAnyRequest(t *testing.T) {
	sb, c, proxy := sandboxClient(t, sandbox.Options{}, nil)
	pay := sbCheckout(t, sb, 1000, false)
	req := request(pay)
	req.Livemode = true
	_, err := c.Refund(context.Background(), req)
	var ne *normalize.Error
	if !errors.As(err, &ne) || ne.Code != normalize.CodeModeMismatch || ne.Param != "payment_id" {
		t.Fatalf("live refund with a test key: %v, want mode_mismatch on payment_id", err)
	}
	if n := proxy.Requests(); n != 0 {
		t.Errorf("mode mismatch made %d HTTP requests, want 0", n)
	}
	// A live checkout is invisible to the test key: Yoco says not found.
	livePay := sbCheckout(t, sb, 1000, true)
	if _, err := c.Lookup(context.Background(), normalize.LookupRef{PaymentID: livePay}); c.ErrorCode(err) != normalize.CodePaymentNotFound {
		t.Errorf("Lookup of a live checkout with a test key: %v, want payment_not_found", err)
	}
}

// Webhooks.

// sign signs body exactly as Yoco documents: HMAC-SHA256 over id + "." +
// timestamp + "." + body keyed with the base64 part of the whsec_ secret.
func sign(t *testing.T, secret, id string, at time.Time, body []byte) http.Header {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	ts := strconv.FormatInt(at.Unix(), 10)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", ts)
	h.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	return h
}

func TestWebhookVerify(t *testing.T) {
	c := open(t, "http://unused", testKey, nil)
	body := golden(t, "webhook_refund_succeeded.json")
	now := time.Date(2025, 3, 4, 10, 15, 30, 0, time.UTC)
	other := "whsec_" + base64.StdEncoding.EncodeToString([]byte("another-secret-entirely-0123"))
	tests := []struct {
		name   string
		header func() http.Header
		body   []byte
		want   error
	}{
		{"signed as documented", func() http.Header { return sign(t, webhookSecret, "msg_1", now, body) }, body, nil},
		{"2m59s old", func() http.Header { return sign(t, webhookSecret, "msg_1", now.Add(-179*time.Second), body) }, body, nil},
		{"2m59s ahead", func() http.Header { return sign(t, webhookSecret, "msg_1", now.Add(179*time.Second), body) }, body, nil},
		{"several signatures, one good", func() http.Header {
			h := sign(t, webhookSecret, "msg_1", now, body)
			h.Set("webhook-signature", "v1,AAAA v2,BBBB "+h.Get("webhook-signature"))
			return h
		}, body, nil},
		{"tampered body", func() http.Header { return sign(t, webhookSecret, "msg_1", now, body) },
			[]byte(strings.Replace(string(body), "900", "90000", 1)), ErrBadSignature},
		{"other id", func() http.Header {
			h := sign(t, webhookSecret, "msg_1", now, body)
			h.Set("webhook-id", "msg_2")
			return h
		}, body, ErrBadSignature},
		{"wrong secret", func() http.Header { return sign(t, other, "msg_1", now, body) }, body, ErrBadSignature},
		{"stale by 3m01s", func() http.Header { return sign(t, webhookSecret, "msg_1", now.Add(-181*time.Second), body) }, body, ErrBadTimestamp},
		{"future by 4m", func() http.Header { return sign(t, webhookSecret, "msg_1", now.Add(4*time.Minute), body) }, body, ErrBadTimestamp},
		{"no timestamp", func() http.Header {
			h := sign(t, webhookSecret, "msg_1", now, body)
			h.Del("webhook-timestamp")
			return h
		}, body, ErrBadTimestamp},
		{"no signature", func() http.Header {
			h := sign(t, webhookSecret, "msg_1", now, body)
			h.Del("webhook-signature")
			return h
		}, body, ErrBadSignature},
		{"v0 signature", func() http.Header {
			h := sign(t, webhookSecret, "msg_1", now, body)
			h.Set("webhook-signature", strings.Replace(h.Get("webhook-signature"), "v1,", "v0,", 1))
			return h
		}, body, ErrBadSignature},
	}
	for _, tt := range tests {
		err := c.Verify(tt.header(), tt.body, now)
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("%s: Verify = %v, want %v", tt.name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), strings.TrimPrefix(webhookSecret, "whsec_")) {
			t.Errorf("%s: the secret appears in %v", tt.name, err)
		}
	}
	noSecret, _ := providers.Open(providers.Config{Name: "y", Type: Type, SecretKey: testKey})
	if err := noSecret.(*Client).Verify(sign(t, webhookSecret, "msg_1", now, body), body, now); !errors.Is(err, ErrNoWebhookSecret) {
		t.Errorf("no secret configured: %v, want ErrNoWebhookSecret", err)
	}
	badSecret, _ := providers.Open(providers.Config{Name: "y", Type: Type, SecretKey: testKey, WebhookSecret: "whsec_not base64!"})
	if err := badSecret.(*Client).Verify(sign(t, webhookSecret, "msg_1", now, body), body, now); !errors.Is(err, ErrBadWebhookSecret) ||
		strings.Contains(err.Error(), "not base64!") {
		t.Errorf("malformed secret: %v, want ErrBadWebhookSecret without the secret", err)
	}
}

func TestWebhookParse(t *testing.T) {
	c := open(t, "http://unused", testKey, nil)
	tests := []struct {
		file string
		want []normalize.WebhookEvent
	}{
		{"webhook_refund_succeeded.json", []normalize.WebhookEvent{{ID: "evt_…", Type: "refund.succeeded",
			ProviderRefundID: "rfd_…", PaymentID: "ch_…", Status: normalize.StatusSucceeded, ProviderStatus: "succeeded",
			Amount: 900, Currency: "ZAR"}}},
		{"webhook_refund_failed.json", []normalize.WebhookEvent{{ID: "evt_2QnG7nZ4b8RkX1cVh3yTqL0p", Type: "refund.failed",
			RefundID: "rf_01JD3Q8Z6M2K4N7P9R1T3V5X7Z", ProviderRefundID: "rfd_r72Lbce7jZ46y7HgycNJ5Fvrb",
			PaymentID: "ch_9LVKD8GnAj7f39DFbn4F16bE", Status: normalize.StatusFailed, ProviderStatus: "failed",
			Amount: 10000, Currency: "ZAR", Failure: &normalize.Failure{Code: normalize.CodeRefundDeclined,
				Message: "yoco did not complete the refund", ProviderCode: "refund.failed"}}}},
	}
	for _, tt := range tests {
		got, err := c.Parse(http.Header{}, golden(t, tt.file))
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", tt.file, d)
		}
	}
	h := http.Header{}
	h.Set("webhook-id", "msg_9")
	got, err := c.Parse(h, []byte(`{"type":"payment.succeeded","payload":{"id":"p_1"}}`))
	if err != nil || len(got) != 1 || got[0].ID != "msg_9" || got[0].Type != "payment.succeeded" || got[0].Status != "" {
		t.Errorf("other event: %+v %v, want only ID msg_9 and Type", got, err)
	}
	for _, bad := range []string{`{"id":`, `{"type":"refund.succeeded"}`, `{"id":"evt_1","type":"refund.failed","payload":"x"}`} {
		if _, err := c.Parse(http.Header{}, []byte(bad)); err == nil {
			t.Errorf("Parse(%s) = nil error", bad)
		}
	}
}

// TestSandboxWebhook: a webhook the sandbox delivers verifies and parses
// into the refund the adapter made.
func TestSandboxWebhook(t *testing.T) {
	got := make(chan []normalize.WebhookEvent, 4)
	var c *Client
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if err := c.Verify(r.Header, b, time.Now()); err != nil {
			t.Errorf("Verify of a sandbox webhook: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		evs, err := c.Parse(r.Header, b)
		if err != nil {
			t.Errorf("Parse: %v", err)
		}
		got <- evs
	}))
	t.Cleanup(recv.Close)
	sb, cl, _ := sandboxClient(t, sandbox.Options{}, nil)
	c = cl
	sb.SetWebhookURL(sandbox.ProviderYoco, recv.URL)
	pay := sbCheckout(t, sb, 5000, false)
	req := request(pay)
	req.Amount = 5000
	pr, err := c.Refund(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case evs := <-got:
		if len(evs) != 1 {
			t.Fatalf("events = %+v", evs)
		}
		ev := evs[0]
		ev.ID = ""
		want := normalize.WebhookEvent{Type: "refund.succeeded", RefundID: req.RefundID, ProviderRefundID: pr.ProviderRefundID,
			PaymentID: pay, Status: normalize.StatusSucceeded, ProviderStatus: "succeeded", Amount: 5000, Currency: "ZAR"}
		if d := cmp.Diff(want, ev); d != "" {
			t.Errorf("event (-want +got):\n%s", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook arrived")
	}
}

// TestSecretNeverInErrors: neither key nor webhook secret appears in any
// error, even when Yoco echoes them back.
func TestSecretNeverInErrors(t *testing.T) {
	echo := func(status int) func(*http.Request, []byte) (int, []byte) {
		return func(r *http.Request, _ []byte) (int, []byte) {
			a := r.Header.Get("Authorization")
			return status, []byte(fmt.Sprintf(`{"errorCode":"bad %s","errorMessage":"you sent %s and %s"}`, a, a, webhookSecret))
		}
	}
	for _, status := range []int{http.StatusBadRequest, http.StatusForbidden, http.StatusUnprocessableEntity, http.StatusInternalServerError, http.StatusAccepted} {
		f := newFake(t, echo(status))
		c := open(t, f.URL, testKey, nil)
		_, rerr := c.Refund(context.Background(), request("ch_A"))
		_, lerr := c.Lookup(context.Background(), normalize.LookupRef{PaymentID: "ch_A"})
		for _, err := range []error{rerr, lerr} {
			if err == nil {
				t.Errorf("%d: no error", status)
				continue
			}
			text := fmt.Sprintf("%v %+v %#v", err, err, err)
			var pe *providers.Error
			if errors.As(err, &pe) {
				text += pe.Body + pe.ProviderCode + pe.ProviderMessage
			}
			for _, s := range []string{testKey, webhookSecret} {
				if strings.Contains(text, s) {
					t.Errorf("%d: a secret appears in the error: %s", status, text)
				}
			}
		}
	}
	// A transport error names the URL, not the key.
	c := open(t, "http://127.0.0.1:1", testKey, nil)
	_, err := c.Refund(context.Background(), request("ch_A"))
	if err == nil || strings.Contains(fmt.Sprintf("%+v", err), testKey) {
		t.Errorf("transport error: %v", err)
	}
}
