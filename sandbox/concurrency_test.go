package sandbox

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// concurrentCase builds refund requests of one provider against one
// payment of 10000 minor units.
type concurrentCase struct {
	provider string
	refused  int // the status of a refund beyond the captured amount
	ok       int
	// req is the i-th request refunding 300; key is its Idempotency-Key.
	req func(e *env, pay string, i int, key string) *http.Request
}

var concurrentCases = []concurrentCase{
	{ProviderYoco, 400, 202, func(e *env, pay string, i int, key string) *http.Request {
		r, _ := http.NewRequest("POST", e.srv.URL+"/yoco/api/checkouts/"+pay+"/refund", strings.NewReader(`{"amount":300}`))
		r.Header.Set("Authorization", "Bearer "+e.sb.Keys().Yoco.TestSecretKey)
		if key != "" {
			r.Header.Set("Idempotency-Key", key)
		}
		return r
	}},
	{ProviderCheckoutCom, 422, 200, func(e *env, pay string, i int, key string) *http.Request {
		r, _ := http.NewRequest("POST", e.srv.URL+"/checkoutcom/v2/charges/"+pay+"/refund", strings.NewReader(fmt.Sprintf(`{"value":300,"trackId":"T%d"}`, i)))
		r.Header.Set("Authorization", e.sb.Keys().CheckoutCom.TestSecretKey)
		return r
	}},
	{ProviderSmartpay, 403, 200, func(e *env, pay string, i int, key string) *http.Request {
		r, _ := http.NewRequest("POST", e.srv.URL+"/smartpay/v1/refunds", strings.NewReader(`{"payment":"`+pay+`","amount":300,"currency":"JPY","reason":"fraudulent"}`))
		r.Header.Set("Authorization", "Basic "+e.sb.Keys().Smartpay.TestSecretKey)
		if key != "" {
			r.Header.Set("Idempotency-Key", key)
		}
		return r
	}},
}

func currencyOf(provider string) string {
	switch provider {
	case ProviderYoco:
		return "ZAR"
	case ProviderCheckoutCom:
		return "USD"
	}
	return "JPY"
}

type answer struct {
	status   int
	replayed bool
	body     string
}

// fire sends n requests at once and returns their answers.
func fire(t *testing.T, e *env, n int, mk func(i int) *http.Request) []answer {
	t.Helper()
	out := make([]answer, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := mk(i)
			<-start
			res, err := e.srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			out[i] = answer{res.StatusCode, res.Header.Get("Idempotent-Replayed") == "true", string(b)}
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// TestConcurrentRefundsNeverExceedCapture sends 50 refunds of 300 at once
// against 10000: 33 are accepted, 17 refused, and the provider's record
// never goes above the captured amount.
func TestConcurrentRefundsNeverExceedCapture(t *testing.T) {
	for _, tc := range concurrentCases {
		t.Run(tc.provider, func(t *testing.T) {
			e := newEnv(t, Options{YocoPartialRefunds: true})
			pay := e.payment(tc.provider, 10000, currencyOf(tc.provider), false)
			count := map[int]int{}
			for _, a := range fire(t, e, 50, func(i int) *http.Request { return tc.req(e, pay, i, "") }) {
				count[a.status]++
			}
			if d := cmp.Diff(map[int]int{tc.ok: 33, tc.refused: 17}, count); d != "" {
				t.Errorf("statuses (-want +got):\n%s", d)
			}
			var sum int64
			ids := map[string]bool{}
			for _, rf := range e.sb.Refunds(tc.provider, pay) {
				sum += rf.Amount
				ids[rf.ID] = true
			}
			if sum != 9900 || len(ids) != 33 {
				t.Errorf("refunded %d in %d distinct refunds, want 9900 in 33", sum, len(ids))
			}
		})
	}
}

// TestConcurrentSameIdempotencyKey sends 20 identical requests with one
// key at once: exactly one refund exists; every answer is the first one
// (original or replayed, byte for byte) or a 409 for a request that met the
// first still in flight.
func TestConcurrentSameIdempotencyKey(t *testing.T) {
	for _, tc := range concurrentCases {
		if tc.provider == ProviderCheckoutCom {
			continue // no idempotency: covered by TestCheckoutComDoublePostRefundsTwice
		}
		t.Run(tc.provider, func(t *testing.T) {
			e := newEnv(t, Options{YocoPartialRefunds: true})
			pay := e.payment(tc.provider, 10000, currencyOf(tc.provider), false)
			answers := fire(t, e, 20, func(i int) *http.Request { return tc.req(e, pay, i, "same-key") })
			var first string
			originals := 0
			for _, a := range answers {
				switch {
				case a.status == http.StatusConflict:
				case a.status == tc.ok:
					if !a.replayed {
						originals++
					}
					if first == "" {
						first = a.body
					}
					if a.body != first {
						t.Errorf("answers differ:\n%s\n%s", first, a.body)
					}
				default:
					t.Errorf("answer %d %s", a.status, a.body)
				}
			}
			if originals != 1 {
				t.Errorf("%d answers not marked replayed, want 1", originals)
			}
			if rfs := e.sb.Refunds(tc.provider, pay); len(rfs) != 1 || rfs[0].IdempotencyKey != "same-key" || rfs[0].Amount != 300 {
				t.Errorf("refunds %+v, want one of 300 under same-key", rfs)
			}
		})
	}
}
