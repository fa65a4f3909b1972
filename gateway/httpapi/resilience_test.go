package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/refundgate/refundgate/gateway/gatewaytest"
	"github.com/refundgate/refundgate/sandbox"
)

func setFault(t *testing.T, e *gatewaytest.Env, provider, mode string) {
	t.Helper()
	if err := e.Sandbox.SetFault(sandbox.Fault{Provider: provider, Mode: mode, Rate: 1}); err != nil {
		t.Fatal(err)
	}
}

// pendingAfterFault makes a Checkout.com refund of amount (of a 10000 EUR
// charge) meet the sandbox fault mode, which leaves it pending with a 202,
// and clears the fault.
func pendingAfterFault(t *testing.T, e *gatewaytest.Env, mode string, amount int64) (pay string, r *gatewaytest.Response) {
	t.Helper()
	pay = e.Payment(t, sandbox.ProviderCheckoutCom, 10000, "EUR")
	e.Do(t, req{Method: "GET", Path: "/v1/payments/" + pay + "/refundable", Key: acme})
	setFault(t, e, sandbox.ProviderCheckoutCom, mode)
	r = e.Refund(t, map[string]any{"payment_id": pay, "amount": amount})
	if r.Status != 202 {
		t.Fatalf("refund: %d %s", r.Status, r.Body)
	}
	e.Sandbox.ClearFaults("")
	return pay, r
}

func breakerState(t *testing.T, e *gatewaytest.Env, account string) string {
	t.Helper()
	r := e.Do(t, req{Method: "GET", Path: "/v1/providers", Key: acme})
	for _, p := range r.JSON(t)["data"].([]any) {
		m := p.(map[string]any)
		if m["name"] == account {
			return m["breaker"].(map[string]any)["state"].(string)
		}
	}
	t.Fatalf("account %s not listed: %s", account, r.Body)
	return ""
}

// breakerChanges returns the breaker state changes logged for account, as
// "from>to".
func breakerChanges(t *testing.T, e *gatewaytest.Env, account string) []string {
	t.Helper()
	var out []string
	for _, l := range e.LogLines(t, "circuit breaker changed state") {
		if l["provider"] == account {
			out = append(out, fmt.Sprintf("%v>%v", l["from"], l["to"]))
		}
	}
	return out
}

// serverLatency is the latency the gateway logged for the request with
// X-Request-Id id.
func serverLatency(t *testing.T, e *gatewaytest.Env, id string) time.Duration {
	t.Helper()
	for _, l := range e.LogLines(t, "request") {
		if l["request_id"] == id {
			return time.Duration(l["latency"].(float64) * float64(time.Second))
		}
	}
	t.Fatalf("no log line for request %s", id)
	return 0
}

// TestBreakerOpensFailsFastAndRecovers: a provider answering 500 opens the
// account's breaker after exactly the configured failures; while open,
// requests are refused at once with 503 and Retry-After, nothing is stored
// or sent, and the key stays free; after open_for the breaker is half open,
// lets a request through and closes. Every change is logged. The refunds
// left pending by the 500s are settled later, each sent once more only
// after Lookup proved the provider had none.
func TestBreakerOpensFailsFastAndRecovers(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{Breaker: "{consecutive_failures: 3, open_for: 400ms, half_open_requests: 1}"})
	pay := e.Payment(t, sandbox.ProviderCheckoutCom, 100000, "EUR")
	// Learn the payment before the provider goes down.
	if r := e.Refund(t, map[string]any{"payment_id": pay, "amount": 100}); r.Status != 201 {
		t.Fatalf("first refund: %d %s", r.Status, r.Body)
	}
	setFault(t, e, sandbox.ProviderCheckoutCom, sandbox.FaultError500)
	var pending []string
	for i := 0; i < 3; i++ {
		if s := breakerState(t, e, "checkoutcom-sandbox"); s != "closed" {
			t.Fatalf("breaker = %s after %d failures, want closed until 3", s, i)
		}
		r := e.Refund(t, map[string]any{"payment_id": pay, "amount": 100})
		if r.Status != http.StatusAccepted || r.Str(t, "status") != "pending" {
			t.Fatalf("refund %d against a failing provider: %d %s, want 202 pending (outcome unknown)", i, r.Status, r.Body)
		}
		pending = append(pending, r.Str(t, "id"))
	}
	if s := breakerState(t, e, "checkoutcom-sandbox"); s != "open" {
		t.Fatalf("breaker = %s after 3 failures, want open", s)
	}
	if got := breakerChanges(t, e, "checkoutcom-sandbox"); fmt.Sprint(got) != "[closed>open]" {
		t.Errorf("logged breaker changes = %v, want [closed>open]", got)
	}
	posts := e.RefundPOSTs()
	calls := e.ProviderCalls("/checkoutcom/")
	h := map[string]string{"Idempotency-Key": "while-open"}
	body := map[string]any{"payment_id": pay, "amount": 100}
	var fastest time.Duration
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("while-open-%d", i)
		r := e.Do(t, req{Method: "POST", Path: "/v1/refunds", Key: acme, Body: body,
			Header: map[string]string{"Idempotency-Key": "while-open", "X-Request-Id": id}})
		p := wantProblem(t, r, 503, "provider_unavailable")
		if r.Header.Get("Retry-After") != "1" || p["provider"] != "checkoutcom-sandbox" {
			t.Errorf("Retry-After %q (want 1: open_for 400ms, rounded up), provider %v", r.Header.Get("Retry-After"), p["provider"])
		}
		if d := serverLatency(t, e, id); i == 0 || d < fastest {
			fastest = d
		}
	}
	// Well under a millisecond of the gateway's own time (the log line's
	// latency: one store read of the key, no provider I/O), even with the
	// race detector on; the fastest of 20 takes out a busy machine's noise.
	if fastest > time.Millisecond {
		t.Errorf("the fastest refusal while open took %s, want under 1ms", fastest)
	}
	t.Logf("fastest refusal while open: %s", fastest)
	list := e.Do(t, req{Method: "GET", Path: "/v1/refunds?payment_id=" + pay, Key: acme})
	if n := len(list.JSON(t)["data"].([]any)); n != 4 {
		t.Errorf("%d refunds stored, want 4: the refused ones stored nothing", n)
	}
	if _, err := e.Store.GetIdempotency(t.Context(), "acme", "while-open"); err == nil {
		t.Error("a refused request bound its key")
	}
	if e.RefundPOSTs() != posts || e.ProviderCalls("/checkoutcom/") != calls {
		t.Errorf("requests reached the provider while the breaker was open")
	}
	// Other accounts are unaffected.
	sp := e.Payment(t, sandbox.ProviderSmartpay, 1000, "JPY")
	if r := e.Refund(t, map[string]any{"payment_id": sp, "amount": 100}); r.Status != 201 {
		t.Fatalf("smartpay refund while checkoutcom is open: %d %s", r.Status, r.Body)
	}
	if s := breakerState(t, e, "smartpay-sandbox"); s != "closed" {
		t.Errorf("smartpay breaker = %s", s)
	}

	// After open_for the breaker is half open. gobreaker reads the wall
	// clock and takes no other, so this waits for it (polling, bounded).
	e.Sandbox.ClearFaults("")
	deadline := time.Now().Add(5 * time.Second)
	for breakerState(t, e, "checkoutcom-sandbox") != "half_open" {
		if time.Now().After(deadline) {
			t.Fatal("the breaker never became half open")
		}
		time.Sleep(20 * time.Millisecond)
	}
	r := e.Do(t, req{Method: "POST", Path: "/v1/refunds", Key: acme, Body: body, Header: h})
	if r.Status != 201 || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("the key refused while open, once half open: %d %s", r.Status, r.Body)
	}
	if s := breakerState(t, e, "checkoutcom-sandbox"); s != "closed" {
		t.Errorf("breaker = %s after a success in half-open, want closed", s)
	}
	if got := breakerChanges(t, e, "checkoutcom-sandbox"); fmt.Sprint(got) != "[closed>open open>half_open half_open>closed]" {
		t.Errorf("logged breaker changes = %v", got)
	}

	// The three 500s applied nothing: the reconciler finds no refund with
	// their trackIds and sends each once more.
	if n, err := e.Service.ReconcileAt(t.Context(), time.Now().Add(time.Hour)); err != nil || n != 3 {
		t.Fatalf("Reconcile looked at %d refunds (err %v), want 3", n, err)
	}
	for _, id := range pending {
		if got := e.Do(t, req{Method: "GET", Path: "/v1/refunds/" + id, Key: acme}); got.Str(t, "status") != "succeeded" {
			t.Errorf("refund %s after reconcile: %s", id, got.Body)
		}
	}
	if n := len(e.Sandbox.Refunds(sandbox.ProviderCheckoutCom, pay)); n != 5 {
		t.Errorf("provider holds %d refunds, want 5 (first, three settled, one after recovery)", n)
	}
}

// TestDeclinesDoNotOpenTheBreaker: refusals of the provider (a declined
// refund, an unknown payment) are the provider working; however many, the
// breaker stays closed.
func TestDeclinesDoNotOpenTheBreaker(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{
		Breaker: "{consecutive_failures: 2, open_for: 1h, half_open_requests: 1}",
		Sandbox: sandbox.Options{YocoLiveRefundsOnly: true},
	})
	for i := 0; i < 4; i++ {
		yoco := e.Payment(t, sandbox.ProviderYoco, 1000, "ZAR")
		wantProblem(t, e.Refund(t, map[string]any{"payment_id": yoco}), 422, "refund_declined")
		wantProblem(t, e.Refund(t, map[string]any{"payment_id": fmt.Sprintf("charge_test_NOPE%020d", i)}), 404, "payment_not_found")
	}
	for _, a := range []string{"yoco-sandbox", "checkoutcom-sandbox"} {
		if s := breakerState(t, e, a); s != "closed" {
			t.Errorf("%s breaker = %s after declines, want closed", a, s)
		}
	}
	if got := e.LogLines(t, "circuit breaker changed state"); len(got) != 0 {
		t.Errorf("breaker changes logged: %v", got)
	}
	// And two infrastructure failures do open it: the count is live.
	pay := e.Payment(t, sandbox.ProviderCheckoutCom, 10000, "EUR")
	e.Do(t, req{Method: "GET", Path: "/v1/payments/" + pay + "/refundable", Key: acme})
	setFault(t, e, sandbox.ProviderCheckoutCom, sandbox.FaultError500)
	for i := 0; i < 2; i++ {
		e.Refund(t, map[string]any{"payment_id": pay, "amount": 100})
	}
	if s := breakerState(t, e, "checkoutcom-sandbox"); s != "open" {
		t.Errorf("checkoutcom breaker = %s after 2 failures, want open", s)
	}
}

// TestTimeoutAndRequestBudget: a hanging provider is given up on at the
// account's timeout, and the whole request at its overall budget when that
// is shorter; both answer 202 pending, never failed.
func TestTimeoutAndRequestBudget(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout string
		budget  time.Duration
	}{
		{"account timeout", "300ms", 0},
		{"request budget", "10s", 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := gatewaytest.Start(t, gatewaytest.Options{Timeout: tc.timeout, RequestBudget: tc.budget})
			e.NoWebhooks()
			pay := e.Payment(t, sandbox.ProviderSmartpay, 5000, "JPY")
			e.Do(t, req{Method: "GET", Path: "/v1/payments/" + pay + "/refundable", Key: acme})
			setFault(t, e, sandbox.ProviderSmartpay, sandbox.FaultHang)
			start := time.Now()
			r := e.Refund(t, map[string]any{"payment_id": pay, "amount": 1000})
			took := time.Since(start)
			if r.Status != 202 || r.Str(t, "status") != "pending" {
				t.Fatalf("refund against a hanging provider: %d %s", r.Status, r.Body)
			}
			if took < 250*time.Millisecond || took > 3*time.Second {
				t.Errorf("answered after %s, want about 300ms", took)
			}
		})
	}
}

// TestSyncLeavesARefundInFlightAlone: while the gateway's first call for a
// Checkout.com refund is still at the provider, a sync (even one long after
// the account's timeout by the gateway's clock) and the reconciler neither
// resend it nor settle it; the provider ends with exactly one refund.
func TestSyncLeavesARefundInFlightAlone(t *testing.T) {
	held := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	clock := gatewaytest.NewClock()
	e := gatewaytest.Start(t, gatewaytest.Options{
		Timeout: "3s", Now: clock.Now,
		ProviderMiddleware: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/refund") {
					first := false
					once.Do(func() { first = true })
					if first {
						close(held)
						<-release
					}
				}
				next.ServeHTTP(w, r)
			})
		},
	})
	e.NoWebhooks()
	pay := e.Payment(t, sandbox.ProviderCheckoutCom, 10000, "EUR")
	e.Do(t, req{Method: "GET", Path: "/v1/payments/" + pay + "/refundable", Key: acme})
	answer := make(chan *gatewaytest.Response, 1)
	go func() { answer <- post(t, e, "in-flight", map[string]any{"payment_id": pay, "amount": 1000}) }()
	select {
	case <-held:
	case <-time.After(5 * time.Second):
		t.Fatal("the refund never reached the provider")
	}
	list := e.Do(t, req{Method: "GET", Path: "/v1/refunds?payment_id=" + pay, Key: acme})
	data := list.JSON(t)["data"].([]any)
	if len(data) != 1 {
		t.Fatalf("refunds stored while in flight: %s", list.Body)
	}
	id := data[0].(map[string]any)["id"].(string)
	clock.Advance(time.Minute)
	s := e.Do(t, req{Method: "POST", Path: "/v1/refunds/" + id + "/sync", Key: acme})
	if s.Status != 200 || s.Str(t, "status") != "pending" {
		t.Errorf("sync while in flight: %d %s, want 200 pending", s.Status, s.Body)
	}
	if _, err := e.Service.ReconcileAt(t.Context(), clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	close(release)
	r := <-answer
	if r.Status != 201 || r.Str(t, "status") != "succeeded" || r.Str(t, "id") != id {
		t.Fatalf("the refund in flight: %d %s", r.Status, r.Body)
	}
	if n := len(e.Sandbox.Refunds(sandbox.ProviderCheckoutCom, pay)); n != 1 || e.RefundPOSTs() != 1 {
		t.Fatalf("provider holds %d refunds after %d refund POSTs, want 1 and 1", n, e.RefundPOSTs())
	}
	// A sync of a settled refund answers it as it is, asking nobody.
	calls := e.ProviderCalls("/checkoutcom/")
	s = e.Do(t, req{Method: "POST", Path: "/v1/refunds/" + id + "/sync", Key: acme})
	if s.Status != 200 || s.Str(t, "status") != "succeeded" || e.ProviderCalls("/checkoutcom/") != calls {
		t.Errorf("sync of a settled refund: %d %s", s.Status, s.Body)
	}
	wantProblem(t, e.Do(t, req{Method: "POST", Path: "/v1/refunds/rf_nope/sync", Key: acme}), 404, "not_found")
}

// TestReconcilerBacksOffAndNeverResendsUnproven: a Checkout.com refund whose
// outcome is unknown, with lookups failing (the breaker is open), is looked
// at again after seconds, then minutes, then hours, never earlier than
// scheduled, never resent, and flagged for attention after 72 hours.
func TestReconcilerBacksOffAndNeverResendsUnproven(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{Timeout: "300ms", Breaker: "{consecutive_failures: 1, open_for: 1h, half_open_requests: 1}"})
	e.NoWebhooks()
	_, r := pendingAfterFault(t, e, sandbox.FaultApplyThen500, 500)
	id := r.Str(t, "id")
	next := func() time.Time {
		t.Helper()
		rf, err := e.Store.GetRefund(t.Context(), "", id)
		if err != nil || rf.NextSyncAt == nil {
			t.Fatalf("refund %s: %v, next sync %v", id, err, rf)
		}
		return *rf.NextSyncAt
	}
	at := next()
	var gaps []time.Duration
	for i := 0; i < 10; i++ {
		if n, _ := e.Service.ReconcileAt(t.Context(), at.Add(-time.Second)); n != 0 {
			t.Fatalf("look %d: the reconciler took the refund a second before it was due", i)
		}
		if n, _ := e.Service.ReconcileAt(t.Context(), at); n != 1 {
			t.Fatalf("look %d: the reconciler did not take the refund when due", i)
		}
		n := next()
		gaps = append(gaps, n.Sub(at))
		at = n
	}
	t.Logf("gaps: %v", gaps)
	if gaps[0] >= time.Minute || gaps[4] < time.Minute || gaps[4] >= time.Hour || gaps[9] < time.Hour || gaps[9] > 4*time.Hour {
		t.Errorf("gaps %v: want seconds, then minutes, then hours (at most 4h)", gaps)
	}
	for i := 1; i < len(gaps); i++ {
		if gaps[i] < gaps[i-1] {
			t.Errorf("gap %d shrinks: %v", i, gaps)
		}
	}
	got := e.Do(t, req{Method: "GET", Path: "/v1/refunds/" + id, Key: acme})
	if got.Str(t, "status") != "pending" || got.JSON(t)["needs_attention"] != false {
		t.Errorf("before 72 hours: %s", got.Body)
	}
	created, _ := time.Parse(time.RFC3339Nano, got.Str(t, "created_at"))
	if _, err := e.Service.ReconcileAt(t.Context(), created.Add(73*time.Hour)); err != nil {
		t.Fatal(err)
	}
	got = e.Do(t, req{Method: "GET", Path: "/v1/refunds/" + id, Key: acme})
	if got.Str(t, "status") != "pending" || got.JSON(t)["needs_attention"] != true {
		t.Errorf("after 73 hours: %s, want pending with needs_attention", got.Body)
	}
	flagged := false
	for _, l := range e.LogLines(t, "refund still pending after 72 hours: needs attention") {
		flagged = flagged || l["refund_id"] == id
	}
	if !flagged {
		t.Error("the logs do not flag the refund")
	}
	if n := e.RefundPOSTs(); n != 1 {
		t.Errorf("the refund was sent %d times; an unproven Checkout.com refund was resent", n)
	}
}

// TestUnknownOutcomesSettleExactlyOnce: the provider applies the refund and
// then answers 500 or drops the connection, or hangs past the timeout. The
// gateway answers 202 pending, never failed, and settling finds exactly one
// refund at the provider.
func TestUnknownOutcomesSettleExactlyOnce(t *testing.T) {
	cases := []struct {
		provider, currency, mode string
	}{
		{sandbox.ProviderCheckoutCom, "EUR", sandbox.FaultApplyThen500},
		{sandbox.ProviderCheckoutCom, "EUR", sandbox.FaultApplyThenDrop},
		{sandbox.ProviderCheckoutCom, "EUR", sandbox.FaultHang},
		{sandbox.ProviderSmartpay, "JPY", sandbox.FaultApplyThen500},
		{sandbox.ProviderSmartpay, "JPY", sandbox.FaultApplyThenDrop},
		{sandbox.ProviderSmartpay, "JPY", sandbox.FaultHang},
	}
	for _, tc := range cases {
		t.Run(tc.provider+"/"+tc.mode, func(t *testing.T) {
			clock := gatewaytest.NewClock()
			e := gatewaytest.Start(t, gatewaytest.Options{Timeout: "300ms", Now: clock.Now})
			e.NoWebhooks()
			pay := e.Payment(t, tc.provider, 10000, tc.currency)
			// Learn the payment first, so the fault hits the refund call.
			if r := e.Do(t, req{Method: "GET", Path: "/v1/payments/" + pay + "/refundable", Key: acme}); r.Status != 200 {
				t.Fatalf("refundable: %d %s", r.Status, r.Body)
			}
			setFault(t, e, tc.provider, tc.mode)
			h := map[string]string{"Idempotency-Key": "unknown-" + tc.mode}
			body := map[string]any{"payment_id": pay, "amount": 2500}
			r := e.Do(t, req{Method: "POST", Path: "/v1/refunds", Key: acme, Body: body, Header: h})
			id := r.Str(t, "id")
			switch {
			case r.Status == http.StatusAccepted && r.Str(t, "status") == "pending":
			case tc.mode != sandbox.FaultHang && tc.provider == sandbox.ProviderSmartpay && r.Status == 201:
				// Smartpay deduplicates by our key: the gateway resent at
				// once and got the applied refund back.
			default:
				t.Fatalf("refund under %s: %d %s, want 202 pending", tc.mode, r.Status, r.Body)
			}
			e.Sandbox.ClearFaults("")
			// An operator's sync after the account's timeout has passed.
			clock.Advance(time.Second)
			s := e.Do(t, req{Method: "POST", Path: "/v1/refunds/" + id + "/sync", Key: acme})
			if s.Status != 200 || s.Str(t, "status") != "succeeded" {
				t.Fatalf("sync: %d %s, want succeeded", s.Status, s.Body)
			}
			got := e.Sandbox.Refunds(tc.provider, pay)
			if len(got) != 1 || got[0].Amount != 2500 {
				t.Fatalf("provider holds %+v, want exactly one refund of 2500", got)
			}
			// The merchant's retry under the same key sees the settled refund.
			again := e.Do(t, req{Method: "POST", Path: "/v1/refunds", Key: acme, Body: body, Header: h})
			if again.Status != 201 || again.Str(t, "id") != id || again.Str(t, "status") != "succeeded" || again.Header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("retry under the same key: %d %s", again.Status, again.Body)
			}
			if n := len(e.Sandbox.Refunds(tc.provider, pay)); n != 1 {
				t.Fatalf("provider holds %d refunds after the retry, want 1", n)
			}
		})
	}
}

// TestReconcilerSettlesPendingRefunds: a refund left pending is settled by
// the reconciler on its own, without a sync call.
func TestReconcilerSettlesPendingRefunds(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{Timeout: "300ms"})
	e.NoWebhooks()
	pay, r := pendingAfterFault(t, e, sandbox.FaultApplyThen500, 1000)
	n, err := e.Service.ReconcileAt(t.Context(), time.Now().Add(time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("Reconcile looked at %d refunds (err %v), want 1", n, err)
	}
	e.WaitStatus(t, r.Str(t, "id"), "succeeded")
	if got := e.Sandbox.Refunds(sandbox.ProviderCheckoutCom, pay); len(got) != 1 {
		t.Fatalf("provider holds %d refunds, want 1", len(got))
	}
}

// TestReconcilerRunsAtStart: the reconciler's first pass runs as it
// starts, not one interval later, so a refund left pending by a crash is
// settled on restart.
func TestReconcilerRunsAtStart(t *testing.T) {
	clock := gatewaytest.NewClock()
	e := gatewaytest.Start(t, gatewaytest.Options{Timeout: "300ms", Now: clock.Now})
	e.NoWebhooks()
	pay, r := pendingAfterFault(t, e, sandbox.FaultApplyThenDrop, 1000)
	clock.Advance(time.Minute)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Service.RunReconciler(ctx, time.Hour)
	}()
	t.Cleanup(func() { cancel(); <-done })
	e.WaitStatus(t, r.Str(t, "id"), "succeeded")
	if n := len(e.Sandbox.Refunds(sandbox.ProviderCheckoutCom, pay)); n != 1 {
		t.Errorf("provider holds %d refunds, want 1", n)
	}
}
