package httpapi_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/refundgate/refundgate/gateway/gatewaytest"
	"github.com/refundgate/refundgate/sandbox"
)

// TestProviderRateLimitIs429: while Checkout.com answers its refund calls
// with 429 and Retry-After, a refund is answered 429 rate_limited with the
// provider's Retry-After, nothing is stored and the key binds nothing; once
// the provider takes requests again, the same key and body make the one
// refund.
func TestProviderRateLimitIs429(t *testing.T) {
	var limiting atomic.Bool
	limiting.Store(true)
	e := gatewaytest.Start(t, gatewaytest.Options{RequestBudget: 3 * time.Second,
		ProviderMiddleware: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if limiting.Load() && r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/refund") {
					w.Header().Set("Retry-After", "3")
					http.Error(w, `{"message":"rate limited"}`, http.StatusTooManyRequests)
					return
				}
				next.ServeHTTP(w, r)
			})
		},
	})
	pay := e.Payment(t, sandbox.ProviderCheckoutCom, 10000, "EUR")
	body := map[string]any{"payment_id": pay, "amount": 1000}
	r := post(t, e, "throttled", body)
	p := wantProblem(t, r, http.StatusTooManyRequests, "rate_limited")
	if r.Header.Get("Retry-After") != "3" || p["provider"] != "checkoutcom-sandbox" {
		t.Errorf("Retry-After %q (want the provider's 3), provider %v; %s", r.Header.Get("Retry-After"), p["provider"], r.Body)
	}
	if list := e.Do(t, req{Method: "GET", Path: "/v1/refunds?payment_id=" + pay, Key: acme}); len(list.JSON(t)["data"].([]any)) != 0 {
		t.Errorf("a rate-limited refund was stored: %s", list.Body)
	}
	if n := len(e.Sandbox.Refunds(sandbox.ProviderCheckoutCom, pay)); n != 0 {
		t.Fatalf("the provider holds %d refunds", n)
	}
	limiting.Store(false)
	r = post(t, e, "throttled", body)
	if r.Status != http.StatusCreated || r.Str(t, "status") != "succeeded" || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("the same key after the limit: %d %s, want a fresh 201", r.Status, r.Body)
	}
	if n := len(e.Sandbox.Refunds(sandbox.ProviderCheckoutCom, pay)); n != 1 {
		t.Errorf("the provider holds %d refunds, want 1", n)
	}
}
