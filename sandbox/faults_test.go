package sandbox

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// refundReq builds one refund-creating request of a provider.
type refundReq struct {
	path string
	hdr  map[string]string
	body string
}

func newRefundReq(e *env, provider string) refundReq {
	k := e.sb.Keys()
	switch provider {
	case ProviderYoco:
		ch := e.payment(ProviderYoco, 1000, "ZAR", false)
		return refundReq{"/yoco/api/checkouts/" + ch + "/refund", yocoAuth(k.Yoco.TestSecretKey), `{}`}
	case ProviderCheckoutCom:
		ch := e.payment(ProviderCheckoutCom, 1000, "USD", false)
		return refundReq{"/checkoutcom/v2/charges/" + ch + "/refund", ckoAuth(k.CheckoutCom.TestSecretKey), `{"value":100}`}
	default:
		p := e.payment(ProviderSmartpay, 1000, "JPY", false)
		return refundReq{"/smartpay/v1/refunds", spAuth(k.Smartpay.TestSecretKey), `{"payment":"` + p + `","amount":100,"currency":"JPY","reason":"fraudulent"}`}
	}
}

func (r refundReq) paymentID() string {
	if strings.HasPrefix(r.path, "/smartpay") {
		i := strings.Index(r.body, "payment_")
		return r.body[i : i+len("payment_test_")+22]
	}
	parts := strings.Split(r.path, "/")
	return parts[len(parts)-2]
}

func (e *env) send(ctx context.Context, r refundReq) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", e.srv.URL+r.path, strings.NewReader(r.body))
	if err != nil {
		return nil, err
	}
	for k, v := range r.hdr {
		req.Header.Set(k, v)
	}
	res, err := e.srv.Client().Do(req)
	if err == nil {
		defer res.Body.Close()
		_, err = io.ReadAll(res.Body)
	}
	return res, err
}

func TestFaultModes(t *testing.T) {
	providers := []string{ProviderYoco, ProviderCheckoutCom, ProviderSmartpay}
	for _, tc := range []struct {
		mode    string
		status  int  // 0: no answer
		applied int  // refunds that must exist afterwards
		dropped bool // the client sees a transport error
	}{
		{FaultError500, 500, 0, false},
		{FaultApplyThen500, 500, 1, false},
		{FaultApplyThenDrop, 0, 1, true},
	} {
		for _, p := range providers {
			t.Run(tc.mode+"/"+p, func(t *testing.T) {
				e := newEnv(t, Options{})
				if err := e.sb.SetFault(Fault{Provider: p, Mode: tc.mode, Rate: 1}); err != nil {
					t.Fatal(err)
				}
				r := newRefundReq(e, p)
				res, err := e.send(context.Background(), r)
				if tc.dropped {
					if err == nil {
						t.Fatalf("got an answer %d, want a dropped connection", res.StatusCode)
					}
				} else if err != nil || res.StatusCode != tc.status {
					t.Fatalf("got %v %v, want %d", res, err, tc.status)
				}
				if n := len(e.sb.Refunds(p, r.paymentID())); n != tc.applied {
					t.Errorf("%d refunds applied, want %d", n, tc.applied)
				}
				// Other providers are unaffected.
				other := providers[(indexOf(providers, p)+1)%3]
				if res, err := e.send(context.Background(), newRefundReq(e, other)); err != nil || res.StatusCode >= 300 {
					t.Errorf("%s affected: %v %v", other, res, err)
				}
				e.sb.ClearFaults(p)
				if res, err := e.send(context.Background(), newRefundReq(e, p)); err != nil || res.StatusCode >= 300 {
					t.Errorf("after ClearFaults: %v %v", res, err)
				}
			})
		}
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func TestFaultHangBlocksUntilClientGivesUp(t *testing.T) {
	e := newEnv(t, Options{})
	if err := e.sb.SetFault(Fault{Provider: ProviderCheckoutCom, Mode: FaultHang, Rate: 1}); err != nil {
		t.Fatal(err)
	}
	r := newRefundReq(e, ProviderCheckoutCom)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := e.send(ctx, r)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the client's deadline", err)
	}
	if el := time.Since(start); el < 90*time.Millisecond {
		t.Errorf("returned after %v, before the client gave up", el)
	}
	if n := len(e.sb.Refunds(ProviderCheckoutCom, r.paymentID())); n != 0 {
		t.Errorf("%d refunds applied by a hung request", n)
	}
}

func TestFaultApplyThen500ThenIdempotentRetryReplays(t *testing.T) {
	e := newEnv(t, Options{})
	if err := e.sb.SetFault(Fault{Provider: ProviderSmartpay, Mode: FaultApplyThen500, Rate: 1}); err != nil {
		t.Fatal(err)
	}
	r := newRefundReq(e, ProviderSmartpay)
	r.hdr = idem(r.hdr, "retry-me")
	if res, err := e.send(context.Background(), r); err != nil || res.StatusCode != 500 {
		t.Fatalf("%v %v", res, err)
	}
	e.sb.ClearFaults("")
	res, err := e.send(context.Background(), r)
	if err != nil || res.StatusCode != 200 || res.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry: %v %v", res, err)
	}
	if n := len(e.sb.Refunds(ProviderSmartpay, r.paymentID())); n != 1 {
		t.Errorf("%d refunds, want exactly 1", n)
	}
}

func TestFaultLatency(t *testing.T) {
	e := newEnv(t, Options{})
	if err := e.sb.SetFault(Fault{Provider: ProviderYoco, Mode: FaultLatency, LatencyMS: 60}); err != nil {
		t.Fatal(err)
	}
	ch := e.payment(ProviderYoco, 100, "ZAR", false)
	start := time.Now()
	if r := e.do("GET", "/yoco/api/checkouts/"+ch, yocoAuth(e.sb.Keys().Yoco.TestSecretKey), nil); r.status != 200 {
		t.Fatalf("%d", r.status)
	}
	if el := time.Since(start); el < 60*time.Millisecond {
		t.Errorf("answered after %v, want ≥ 60ms", el)
	}
	if d := cmp.Diff([]Fault{{Provider: ProviderYoco, Mode: FaultLatency, Rate: 1, LatencyMS: 60}}, e.sb.Faults()); d != "" {
		t.Errorf("Faults (-want +got):\n%s", d)
	}
}

func TestSetFaultValidation(t *testing.T) {
	sb := New(Options{Seed: 1})
	defer sb.Close()
	for _, f := range []Fault{
		{Provider: "stripe", Mode: FaultError500, Rate: 1},
		{Provider: ProviderYoco, Mode: "explode", Rate: 1},
		{Provider: ProviderYoco, Mode: FaultError500, Rate: 1.5},
		{Provider: ProviderYoco, Mode: FaultError500, Rate: -0.1},
		{Provider: ProviderYoco, Mode: FaultLatency, LatencyMS: -1},
		{Provider: ProviderYoco, Mode: FaultLatency},
	} {
		if err := sb.SetFault(f); err == nil {
			t.Errorf("%+v accepted", f)
		}
	}
}

func TestFaultRateIsStatistical(t *testing.T) {
	e := newEnv(t, Options{Seed: 7})
	if err := e.sb.SetFault(Fault{Provider: ProviderCheckoutCom, Mode: FaultError500, Rate: 0.5}); err != nil {
		t.Fatal(err)
	}
	k := ckoAuth(e.sb.Keys().CheckoutCom.TestSecretKey)
	ch := e.payment(ProviderCheckoutCom, 1000000, "USD", false)
	fails := 0
	for range 200 {
		if e.do("POST", "/checkoutcom/v2/charges/"+ch+"/refund", k, `{"value":1}`).status == 500 {
			fails++
		}
	}
	if fails < 60 || fails > 140 {
		t.Errorf("%d of 200 failed at rate 0.5", fails)
	}
	if n := len(e.sb.Refunds(ProviderCheckoutCom, ch)); n != 200-fails {
		t.Errorf("%d refunds, want %d", n, 200-fails)
	}
}
