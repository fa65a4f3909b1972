// Package providertest is the conformance suite every provider adapter
// passes. An adapter's test builds a Harness around the provider's simulator
// and calls Run; the suite puts a Proxy between the adapter and the
// simulator to count requests and inject faults.
package providertest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/providers"
)

// Recorded is one refund as the provider itself holds it.
type Recorded struct {
	ID     string
	Amount int64
}

// Harness adapts one provider and its simulator to the suite.
type Harness struct {
	// Handler serves the provider's API (the simulator).
	Handler http.Handler
	// BasePath is where the API lives under Handler, e.g. "/yoco/api".
	BasePath string
	// SecretKey is a valid key for the simulator; other secrets (webhook
	// secrets) go in Secrets. None may appear in an error.
	SecretKey string
	Secrets   []string
	// New builds the adapter for baseURL with secretKey.
	New func(baseURL, secretKey string) (providers.Provider, error)
	// NewPayment makes a captured payment at the simulator.
	NewPayment func(t *testing.T, amount int64) string
	// Currency is a currency the provider takes; amounts are in its minor unit.
	Currency string
	// MissingPaymentID is a well-formed id the simulator does not know.
	MissingPaymentID string
	// ProviderRefunds returns the simulator's own record of a payment's
	// refunds: the ground truth.
	ProviderRefunds func(t *testing.T, paymentID string) []Recorded
	// Settle, when set, makes a pending refund final at the simulator, for
	// providers that settle asynchronously.
	Settle func(t *testing.T)
	// NewOtherModePayment, when set, makes a captured payment of the other
	// mode than SecretKey's (a live payment for a test key): a refund of it
	// must be refused as mode_mismatch before any HTTP request.
	NewOtherModePayment func(t *testing.T, amount int64) string
}

var seq atomic.Int64

func refundID() string {
	return fmt.Sprintf("rf_conformance_%d_%d", time.Now().UnixNano(), seq.Add(1))
}

// fullRequest is a refund of the whole of a payment of amount.
func (h *Harness) fullRequest(paymentID string, amount int64) *normalize.RefundRequest {
	return &normalize.RefundRequest{RefundID: refundID(), PaymentID: paymentID, Amount: amount, Full: true,
		Currency: h.Currency, Reason: normalize.ReasonRequestedByCustomer, Reference: "ORDER-1", Metadata: map[string]string{"order": "1"}}
}

type env struct {
	h     *Harness
	proxy *Proxy
	p     providers.Provider
	errs  []error
}

func (h *Harness) setup(t *testing.T) *env {
	t.Helper()
	proxy := NewProxy(h.Handler)
	t.Cleanup(proxy.Close)
	p, err := h.New(proxy.URL+h.BasePath, h.SecretKey)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e := &env{h: h, proxy: proxy, p: p}
	t.Cleanup(func() { e.checkSecrets(t) })
	return e
}

func (e *env) refund(ctx context.Context, req *normalize.RefundRequest) (*normalize.ProviderRefund, error) {
	r, err := e.p.Refund(ctx, req)
	if err != nil {
		e.errs = append(e.errs, err)
	}
	return r, err
}

func (e *env) checkSecrets(t *testing.T) {
	secrets := append([]string{e.h.SecretKey}, e.h.Secrets...)
	for _, err := range e.errs {
		for _, s := range secrets {
			text := fmt.Sprintf("%v %+v %#v", err, err, err)
			var pe *providers.Error
			if errors.As(err, &pe) {
				text += pe.Body + pe.ProviderMessage + pe.ProviderCode
			}
			if s != "" && strings.Contains(text, s) {
				t.Errorf("a secret appears in an error: %q", text)
			}
		}
	}
}

func (e *env) total(t *testing.T, paymentID string) (n int, sum int64) {
	for _, r := range e.h.ProviderRefunds(t, paymentID) {
		n++
		sum += r.Amount
	}
	return n, sum
}

func wantOutcome(t *testing.T, err error, want ...providers.Outcome) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want an error with outcome %v", want)
	}
	got := providers.OutcomeOf(err)
	for _, w := range want {
		if got == w {
			return
		}
	}
	t.Fatalf("outcome of %v = %v, want one of %v", err, got, want)
}

// Run runs the conformance suite.
func Run(t *testing.T, h *Harness) {
	t.Run("Capabilities", func(t *testing.T) { testCapabilities(t, h) })
	t.Run("LimitsBeforeAnyRequest", func(t *testing.T) { testLimits(t, h) })
	t.Run("ModeMismatchBeforeAnyRequest", func(t *testing.T) { testModeMismatch(t, h) })
	t.Run("FullRefund", func(t *testing.T) { testFullRefund(t, h) })
	t.Run("PartialRefund", func(t *testing.T) { testPartial(t, h) })
	t.Run("Reasons", func(t *testing.T) { testReasons(t, h) })
	t.Run("PaymentNotFound", func(t *testing.T) { testNotFound(t, h) })
	t.Run("AlreadyRefunded", func(t *testing.T) { testAlreadyRefunded(t, h) })
	t.Run("RateLimited", func(t *testing.T) { testRateLimited(t, h) })
	t.Run("ServerError", func(t *testing.T) { testServerError(t, h) })
	t.Run("AppliedThen500", func(t *testing.T) { testAppliedThen500(t, h) })
	t.Run("MalformedBody", func(t *testing.T) { testMalformed(t, h) })
	t.Run("ContextCancelled", func(t *testing.T) { testCancelled(t, h) })
	t.Run("Hang", func(t *testing.T) { testHang(t, h) })
	t.Run("IdempotencyKeyStable", func(t *testing.T) { testIdempotencyStable(t, h) })
	t.Run("AuthFailed", func(t *testing.T) { testAuthFailed(t, h) })
	t.Run("SecretsNotEchoed", func(t *testing.T) { testSecretsNotEchoed(t, h) })
}

func testCapabilities(t *testing.T, h *Harness) {
	e := h.setup(t)
	c := e.p.Capabilities()
	if c.PaymentRef == "" {
		t.Error("Capabilities().PaymentRef is empty")
	}
	if c.Multiple && !c.Partial {
		t.Error("Capabilities: Multiple without Partial")
	}
	for _, r := range c.Reasons {
		if !r.Valid() {
			t.Errorf("Capabilities().Reasons has unknown reason %q", r)
		}
	}
	if e.proxy.Requests() != 0 {
		t.Errorf("Capabilities made %d HTTP requests, want 0", e.proxy.Requests())
	}
}

// wantLocal asserts that err is a refusal made before any request: a
// normalize.Error with code on field (or a sub-field of it) whose message
// names limit, with no HTTP request made since before.
func testFullRefund(t *testing.T, h *Harness) {
	e := h.setup(t)
	pay := h.NewPayment(t, 10000)
	req := h.fullRequest(pay, 10000)
	got, err := e.refund(context.Background(), req)
	if err != nil {
		t.Fatalf("Refund: %v", err)
	}
	if got.Status != normalize.StatusPending && got.Status != normalize.StatusSucceeded {
		t.Fatalf("Status = %q, want pending or succeeded", got.Status)
	}
	if got.ProviderRefundID == "" {
		t.Error("ProviderRefundID is empty")
	}
	if n, sum := e.total(t, pay); n != 1 || sum != 10000 {
		t.Fatalf("provider holds %d refunds of %d in all, want 1 of 10000", n, sum)
	}
	if h.Settle != nil {
		h.Settle(t)
	}
	st, err := e.p.Lookup(context.Background(), normalize.LookupRef{PaymentID: pay, RefundID: req.RefundID,
		ProviderRefundID: got.ProviderRefundID, Currency: h.Currency})
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if st.CapturedAmount != 10000 {
		t.Errorf("Lookup CapturedAmount = %d, want 10000", st.CapturedAmount)
	}
	if st.Refund == nil {
		t.Fatal("Lookup did not find the refund")
	}
	if st.Refund.Status != normalize.StatusSucceeded {
		t.Errorf("Lookup refund status = %q, want succeeded", st.Refund.Status)
	}
	if st.RefundedAmount != 10000 {
		t.Errorf("Lookup RefundedAmount = %d, want 10000", st.RefundedAmount)
	}
}

func testPartial(t *testing.T, h *Harness) {
	e := h.setup(t)
	pay := h.NewPayment(t, 10000)
	req := h.fullRequest(pay, 2500)
	req.Full = false
	caps := e.p.Capabilities()
	before := e.proxy.Requests()
	got, err := e.refund(context.Background(), req)
	if !caps.Partial {
		if code := e.p.ErrorCode(err); err == nil || code != normalize.CodePartialRefundUnsupported {
			t.Fatalf("partial refund on a full-only account: err %v code %q, want partial_refund_unsupported", err, code)
		}
		if n := e.proxy.Requests() - before; n != 0 {
			t.Fatalf("refused partial refund made %d HTTP requests, want 0", n)
		}
		return
	}
	if err != nil {
		t.Fatalf("partial Refund: %v", err)
	}
	if got.Amount != 2500 {
		t.Errorf("Amount = %d, want 2500", got.Amount)
	}
	if !caps.Multiple {
		return
	}
	req2 := h.fullRequest(pay, 2500)
	req2.Full = false
	if _, err := e.refund(context.Background(), req2); err != nil {
		t.Fatalf("second partial Refund: %v", err)
	}
	if n, sum := e.total(t, pay); n != 2 || sum != 5000 {
		t.Fatalf("provider holds %d refunds of %d, want 2 of 5000", n, sum)
	}
}

func testReasons(t *testing.T, h *Harness) {
	e := h.setup(t)
	for _, r := range normalize.Reasons {
		pay := h.NewPayment(t, 1000)
		req := h.fullRequest(pay, 1000)
		req.Reason = r
		if _, err := e.refund(context.Background(), req); err != nil {
			t.Errorf("reason %s: %v", r, err)
		}
	}
}

func testNotFound(t *testing.T, h *Harness) {
	e := h.setup(t)
	_, err := e.refund(context.Background(), h.fullRequest(h.MissingPaymentID, 1000))
	wantOutcome(t, err, providers.OutcomeDeclined)
	if code := e.p.ErrorCode(err); code != normalize.CodePaymentNotFound {
		t.Errorf("ErrorCode = %q, want payment_not_found (err %v)", code, err)
	}
	if _, err := e.p.Lookup(context.Background(), normalize.LookupRef{PaymentID: h.MissingPaymentID, Currency: h.Currency}); e.p.ErrorCode(err) != normalize.CodePaymentNotFound {
		t.Errorf("Lookup of a missing payment: %v, want payment_not_found", err)
	}
}

func testAlreadyRefunded(t *testing.T, h *Harness) {
	e := h.setup(t)
	pay := h.NewPayment(t, 3000)
	if _, err := e.refund(context.Background(), h.fullRequest(pay, 3000)); err != nil {
		t.Fatalf("first Refund: %v", err)
	}
	if h.Settle != nil {
		h.Settle(t)
	}
	got, err := e.refund(context.Background(), h.fullRequest(pay, 3000))
	if err == nil && got.Status != normalize.StatusFailed {
		t.Fatalf("second full refund: %+v, want a refusal", got)
	}
	if err != nil {
		wantOutcome(t, err, providers.OutcomeDeclined)
		switch code := e.p.ErrorCode(err); code {
		case normalize.CodePaymentFullyRefunded, normalize.CodeAmountExceedsRefundable, normalize.CodeRefundDeclined:
		default:
			t.Errorf("ErrorCode = %q, want payment_fully_refunded, amount_exceeds_refundable or refund_declined", code)
		}
	}
	if n, sum := e.total(t, pay); n != 1 || sum != 3000 {
		t.Fatalf("provider holds %d refunds of %d, want 1 of 3000", n, sum)
	}
}

func testRateLimited(t *testing.T, h *Harness) {
	e := h.setup(t)
	pay := h.NewPayment(t, 1000)
	e.proxy.SetFault(Fault429)
	_, err := e.refund(context.Background(), h.fullRequest(pay, 1000))
	wantOutcome(t, err, providers.OutcomeRetryLater)
	if !providers.Infrastructure(err) {
		t.Error("429 is not counted as an infrastructure failure")
	}
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.StatusCode != http.StatusTooManyRequests || pe.RetryAfter != time.Second {
		t.Errorf("want a *providers.Error with status 429 and RetryAfter 1s, got %#v", pe)
	}
	if n, _ := e.total(t, pay); n != 0 {
		t.Fatalf("provider holds %d refunds after 429, want 0", n)
	}
}

func testServerError(t *testing.T, h *Harness) {
	e := h.setup(t)
	pay := h.NewPayment(t, 1000)
	e.proxy.SetFault(Fault500)
	_, err := e.refund(context.Background(), h.fullRequest(pay, 1000))
	wantOutcome(t, err, providers.OutcomeUnknown)
	if !providers.Infrastructure(err) {
		t.Error("500 is not counted as an infrastructure failure")
	}
	if code := e.p.ErrorCode(err); code != normalize.CodeProviderError {
		t.Errorf("ErrorCode = %q, want provider_error", code)
	}
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.StatusCode != http.StatusInternalServerError || !strings.Contains(pe.Body, "internal error") {
		t.Errorf("want a *providers.Error keeping status 500 and an excerpt of the body, got %#v", pe)
	}
}

func testAppliedThen500(t *testing.T, h *Harness) {
	e := h.setup(t)
	pay := h.NewPayment(t, 1000)
	req := h.fullRequest(pay, 1000)
	e.proxy.SetFault(FaultApplyThen500)
	_, err := e.refund(context.Background(), req)
	wantOutcome(t, err, providers.OutcomeUnknown)
	e.proxy.SetFault(FaultNone)
	if h.Settle != nil {
		h.Settle(t)
	}
	st, err := e.p.Lookup(context.Background(), normalize.LookupRef{PaymentID: pay, RefundID: req.RefundID, Currency: h.Currency, Amount: 1000})
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if st.Refund == nil {
		t.Fatal("Lookup by refund id did not find a refund that the provider applied: the gateway could refund twice")
	}
	if st.Refund.Amount != 1000 || st.Refund.ProviderRefundID == "" {
		t.Errorf("Lookup found %+v, want amount 1000 with a provider refund id", st.Refund)
	}
	// A payment with no refund of that id: Lookup says so.
	other := h.NewPayment(t, 1000)
	st, err = e.p.Lookup(context.Background(), normalize.LookupRef{PaymentID: other, RefundID: refundID(), Currency: h.Currency})
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if st.Refund != nil {
		t.Errorf("Lookup found a refund that was never made: %+v", st.Refund)
	}
}

func testMalformed(t *testing.T, h *Harness) {
	e := h.setup(t)
	pay := h.NewPayment(t, 1000)
	e.proxy.SetFault(FaultMalformed)
	_, err := e.refund(context.Background(), h.fullRequest(pay, 1000))
	wantOutcome(t, err, providers.OutcomeUnknown)
}

func testCancelled(t *testing.T, h *Harness) {
	e := h.setup(t)
	pay := h.NewPayment(t, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.refund(ctx, h.fullRequest(pay, 1000))
	wantOutcome(t, err, providers.OutcomeNotSent)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want it to wrap context.Canceled", err)
	}
	if n, _ := e.total(t, pay); n != 0 {
		t.Fatalf("provider holds %d refunds after a cancelled call, want 0", n)
	}
}

func testHang(t *testing.T, h *Harness) {
	e := h.setup(t)
	pay := h.NewPayment(t, 1000)
	e.proxy.SetFault(FaultHang)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := e.refund(ctx, h.fullRequest(pay, 1000))
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Refund took %v past its deadline", d)
	}
	wantOutcome(t, err, providers.OutcomeUnknown)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want it to wrap context.DeadlineExceeded", err)
	}
}

func testIdempotencyStable(t *testing.T, h *Harness) {
	e := h.setup(t)
	pay := h.NewPayment(t, 1000)
	req := h.fullRequest(pay, 1000)
	caps := e.p.Capabilities()
	e.proxy.SetFault(FaultApplyThen500)
	_, err := e.refund(context.Background(), req)
	wantOutcome(t, err, providers.OutcomeUnknown)
	e.proxy.SetFault(FaultNone)
	if !caps.Idempotent {
		// Without provider idempotency the handle is the refund id found by
		// Lookup; a resend must never happen blind (see AppliedThen500).
		return
	}
	if _, err := e.refund(context.Background(), req); err != nil {
		t.Fatalf("resend with the same refund id: %v", err)
	}
	keys := e.proxy.IdempotencyKeys()
	if len(keys) != 2 || keys[0] == "" || keys[0] != keys[1] {
		t.Fatalf("Idempotency-Key headers = %q, want the same non-empty key twice", keys)
	}
	if n, _ := e.total(t, pay); n != 1 {
		t.Fatalf("provider holds %d refunds after a resend with the same key, want 1", n)
	}
	// Another refund gets another key: the key is the refund's, not the
	// account's or the payment's.
	other := h.fullRequest(h.NewPayment(t, 1000), 1000)
	if _, err := e.refund(context.Background(), other); err != nil {
		t.Fatalf("another refund: %v", err)
	}
	keys = e.proxy.IdempotencyKeys()
	if len(keys) != 3 || keys[2] == "" || keys[2] == keys[0] {
		t.Fatalf("Idempotency-Key headers = %q, want a different key for another refund", keys)
	}
}

func testAuthFailed(t *testing.T, h *Harness) {
	proxy := NewProxy(h.Handler)
	defer proxy.Close()
	bad := h.SecretKey[:len(h.SecretKey)-4] + "zzzz"
	p, err := h.New(proxy.URL+h.BasePath, bad)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	pay := h.NewPayment(t, 1000)
	_, err = p.Refund(context.Background(), h.fullRequest(pay, 1000))
	if code := p.ErrorCode(err); code != normalize.CodeProviderAuthFailed {
		t.Fatalf("ErrorCode = %q (err %v), want provider_auth_failed", code, err)
	}
	wantOutcome(t, err, providers.OutcomeDeclined)
	if err != nil && strings.Contains(fmt.Sprintf("%+v", err), bad) {
		t.Errorf("the key appears in the error: %v", err)
	}
}

func testSecretsNotEchoed(t *testing.T, h *Harness) {
	e := h.setup(t)
	pay := h.NewPayment(t, 1000)
	e.proxy.SetFault(FaultEchoAuth)
	_, err := e.refund(context.Background(), h.fullRequest(pay, 1000))
	if err == nil {
		t.Fatal("want an error from a 401")
	}
	// checkSecrets runs at cleanup over every error, including this one.
}
