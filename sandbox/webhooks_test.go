package sandbox

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func TestWebhookRetriedAfterFailedDelivery(t *testing.T) {
	h := newHook(t, 2) // the first two deliveries answer 500
	e := newEnv(t, Options{WebhookRetry: []time.Duration{0, 20 * time.Millisecond, 40 * time.Millisecond}})
	e.sb.SetWebhookURL(ProviderYoco, h.srv.URL)
	keys := e.sb.Keys().Yoco
	ch := e.payment(ProviderYoco, 100, "ZAR", false)
	if r := e.do("POST", "/yoco/api/checkouts/"+ch+"/refund", yocoAuth(keys.TestSecretKey), nil); r.status != 202 {
		t.Fatalf("%d", r.status)
	}
	wh, err := standardwebhooks.NewWebhook(keys.WebhookSecret)
	if err != nil {
		t.Fatal(err)
	}
	var got []received
	for range 3 {
		got = append(got, h.next(t))
	}
	for i, g := range got {
		if err := wh.Verify(g.body, g.header); err != nil {
			t.Errorf("attempt %d: %v", i, err)
		}
		if g.header.Get("webhook-id") != got[0].header.Get("webhook-id") || string(g.body) != string(got[0].body) {
			t.Errorf("attempt %d is not the same event", i)
		}
	}
	if d := got[1].at.Sub(got[0].at); d < 20*time.Millisecond {
		t.Errorf("first retry after %v, want ≥ 20ms", d)
	}
	if d := got[2].at.Sub(got[1].at); d < 40*time.Millisecond {
		t.Errorf("second retry after %v, want ≥ 40ms", d)
	}
	eventually(t, "stats", func() bool {
		s := e.sb.WebhookStats()
		return s.Delivered == 1 && s.Failed == 2
	})
}

func TestWebhookAbandonedAfterSchedule(t *testing.T) {
	h := newHook(t, 100)
	e := newEnv(t, Options{WebhookRetry: []time.Duration{0, time.Millisecond}})
	e.sb.SetWebhookURL(ProviderCheckoutCom, h.srv.URL)
	ch := e.payment(ProviderCheckoutCom, 100, "USD", false)
	if r := e.do("POST", "/checkoutcom/v2/charges/"+ch+"/refund", ckoAuth(e.sb.Keys().CheckoutCom.TestSecretKey), nil); r.status != 200 {
		t.Fatalf("%d", r.status)
	}
	h.next(t)
	h.next(t)
	eventually(t, "abandoned", func() bool { return e.sb.WebhookStats().Abandoned == 1 })
}

func TestWebhookDuplicates(t *testing.T) {
	h := newHook(t, 0)
	e := newEnv(t, Options{WebhookDuplicateRate: 1})
	e.sb.SetWebhookURL(ProviderSmartpay, h.srv.URL)
	p := e.payment(ProviderSmartpay, 100, "JPY", false)
	if r := e.do("POST", "/smartpay/v1/refunds", spAuth(e.sb.Keys().Smartpay.TestSecretKey), map[string]any{"payment": p, "currency": "JPY", "reason": "fraudulent"}); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	a, b := h.next(t), h.next(t)
	if string(a.body) != string(b.body) || a.header.Get("Smartpay-Event-Id") != b.header.Get("Smartpay-Event-Id") {
		t.Error("the duplicate is not the same event")
	}
	eventually(t, "stats", func() bool {
		s := e.sb.WebhookStats()
		return s.Delivered == 2 && s.Duplicated == 1
	})
}

func TestCloseStopsWebhooks(t *testing.T) {
	h := newHook(t, 1000)
	sb := New(Options{Seed: 3, WebhookRetry: []time.Duration{0, time.Hour}})
	sb.SetWebhookURL(ProviderCheckoutCom, h.srv.URL)
	id, _ := sb.CreatePayment(ProviderCheckoutCom, 100, "USD", false)
	sb.cko.refund(id, false, nil)
	h.next(t)
	done := make(chan struct{})
	go func() { sb.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return with a retry an hour away")
	}
}

// TestWebhooksAreAsynchronous checks that a receiver that does not answer
// holds up no refund: every provider answers while its webhook is stuck.
func TestWebhooksAreAsynchronous(t *testing.T) {
	gate := make(chan struct{})
	arrived := make(chan string, 3)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- r.Header.Get("User-Agent")
		<-gate
	}))
	defer recv.Close()
	defer close(gate)
	e := newEnv(t, Options{})
	for _, p := range []string{ProviderYoco, ProviderCheckoutCom, ProviderSmartpay} {
		e.sb.SetWebhookURL(p, recv.URL)
	}
	for _, p := range []string{ProviderYoco, ProviderCheckoutCom, ProviderSmartpay} {
		r := newRefundReq(e, p)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		res, err := e.send(ctx, r)
		cancel()
		if err != nil || res.StatusCode >= 300 {
			t.Fatalf("%s: %v %v", p, res, err)
		}
		select {
		case ua := <-arrived:
			if ua != "refundgate-sandbox/"+p {
				t.Errorf("webhook from %q, want %s", ua, p)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no webhook", p)
		}
	}
}
