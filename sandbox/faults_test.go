package sandbox

import (
	"bytes"
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
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	res.Body = io.NopCloser(bytes.NewReader(b)) // read in full; readable again
	return res, err
}

// errorKeys are the keys of each provider's error body.
var errorKeys = map[string][]string{
	ProviderYoco:        {"displayMessage", "errorCode", "errorMessage", "errorType"},
	ProviderCheckoutCom: {"errorCode", "errorMessageCodes", "errors", "eventId", "message"},
	ProviderSmartpay:    {"details", "errorCode", "message", "statusCode"},
}

// TestFaultModes sets each refund fault through the control surface
// (PUT /_sandbox/faults) on each provider and checks what the client sees
// and what the provider recorded, then clears it with DELETE.
func TestFaultModes(t *testing.T) {
	providers := []string{ProviderYoco, ProviderCheckoutCom, ProviderSmartpay}
	for _, tc := range []struct {
		mode    string
		status  int  // 0: no answer
		applied int  // refunds that must exist afterwards
		dropped bool // the client sees a transport error
		hang    bool // the client gives up after its deadline
	}{
		{FaultError500, 500, 0, false, false},
		{FaultHang, 0, 0, false, true},
		{FaultApplyThen500, 500, 1, false, false},
		{FaultApplyThenDrop, 0, 1, true, false},
	} {
		for _, p := range providers {
			t.Run(tc.mode+"/"+p, func(t *testing.T) {
				e := newEnv(t, Options{})
				if r := e.do("PUT", "/_sandbox/faults", nil, Fault{Provider: p, Mode: tc.mode, Rate: 1}); r.status != 200 {
					t.Fatalf("PUT /_sandbox/faults: %d %s", r.status, r.body)
				}
				r := newRefundReq(e, p)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if tc.hang {
					cancel()
					ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
				}
				defer cancel()
				start := time.Now()
				res, err := e.send(ctx, r)
				switch {
				case tc.hang:
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Fatalf("got %v %v, want the client's deadline", res, err)
					}
					if el := time.Since(start); el < 90*time.Millisecond {
						t.Errorf("returned after %v, before the client gave up", el)
					}
				case tc.dropped:
					if err == nil {
						t.Fatalf("got an answer %d, want a dropped connection", res.StatusCode)
					}
				default:
					if err != nil || res.StatusCode != tc.status {
						t.Fatalf("got %v %v, want %d", res, err, tc.status)
					}
					// The 500 is the provider's own error body.
					b, _ := io.ReadAll(res.Body)
					if d := cmp.Diff(errorKeys[p], sortedKeys(decodeMap(t, b))); d != "" {
						t.Errorf("500 body keys (-want +got):\n%s", d)
					}
				}
				if n := len(e.sb.Refunds(p, r.paymentID())); n != tc.applied {
					t.Errorf("%d refunds applied, want %d", n, tc.applied)
				}
				// Lookups are not refund-creating: the fault leaves them alone.
				if lr := e.do("GET", lookupPath(e, p, r), lookupAuth(e, p), nil); lr.status != 200 {
					t.Errorf("lookup under %s: %d %s", tc.mode, lr.status, lr.body)
				}
				// Other providers are unaffected.
				other := providers[(indexOf(providers, p)+1)%3]
				if res, err := e.send(context.Background(), newRefundReq(e, other)); err != nil || res.StatusCode >= 300 {
					t.Errorf("%s affected: %v %v", other, res, err)
				}
				if dr := e.do("DELETE", "/_sandbox/faults?provider="+p, nil, nil); dr.status != 204 {
					t.Fatalf("DELETE /_sandbox/faults: %d", dr.status)
				}
				if res, err := e.send(context.Background(), newRefundReq(e, p)); err != nil || res.StatusCode >= 300 {
					t.Errorf("after DELETE: %v %v", res, err)
				}
			})
		}
	}
}

// lookupPath is a reconciliation lookup about r's payment.
func lookupPath(e *env, provider string, r refundReq) string {
	switch provider {
	case ProviderYoco:
		return "/yoco/api/checkouts/" + r.paymentID()
	case ProviderCheckoutCom:
		return "/checkoutcom/v2/charges/" + r.paymentID() + "/history"
	}
	return "/smartpay/v1/refunds?payment=" + r.paymentID()
}

func lookupAuth(e *env, provider string) map[string]string {
	k := e.sb.Keys()
	switch provider {
	case ProviderYoco:
		return yocoAuth(k.Yoco.TestSecretKey)
	case ProviderCheckoutCom:
		return ckoAuth(k.CheckoutCom.TestSecretKey)
	}
	return spAuth(k.Smartpay.TestSecretKey)
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
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

// TestFaultLatencyRate checks that latency with a rate delays about that
// share of requests, and that a latency_ms given with a refund mode delays
// every request (lookups included) besides the refund fault.
func TestFaultLatencyRate(t *testing.T) {
	const ms = 80
	e := newEnv(t, Options{Seed: 11})
	if r := e.do("PUT", "/_sandbox/faults", nil, Fault{Provider: ProviderSmartpay, Mode: FaultLatency, Rate: 0.5, LatencyMS: ms}); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	k := spAuth(e.sb.Keys().Smartpay.TestSecretKey)
	slow := 0
	const n = 40
	for range n {
		start := time.Now()
		if r := e.do("GET", "/smartpay/v1/refunds", k, nil); r.status != 200 {
			t.Fatalf("%d", r.status)
		}
		if time.Since(start) >= ms*time.Millisecond {
			slow++
		}
	}
	if slow < n/5 || slow > n*4/5 {
		t.Errorf("%d of %d requests delayed at rate 0.5", slow, n)
	}
	var got faultList
	if err := jsonUnmarshal(e.do("GET", "/_sandbox/faults", nil, nil).body, &got); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]Fault{{Provider: ProviderSmartpay, Mode: FaultLatency, Rate: 0.5, LatencyMS: ms}}, got.Data); d != "" {
		t.Errorf("GET /_sandbox/faults (-want +got):\n%s", d)
	}

	e.sb.ClearFaults("")
	if err := e.sb.SetFault(Fault{Provider: ProviderYoco, Mode: FaultError500, Rate: 1, LatencyMS: ms}); err != nil {
		t.Fatal(err)
	}
	r := newRefundReq(e, ProviderYoco)
	start := time.Now()
	if res, err := e.send(context.Background(), r); err != nil || res.StatusCode != 500 {
		t.Fatalf("%v %v", res, err)
	}
	if el := time.Since(start); el < ms*time.Millisecond {
		t.Errorf("refund answered after %v, want ≥ %dms", el, ms)
	}
	start = time.Now()
	if lr := e.do("GET", lookupPath(e, ProviderYoco, r), lookupAuth(e, ProviderYoco), nil); lr.status != 200 || time.Since(start) < ms*time.Millisecond {
		t.Errorf("lookup: %d after %v", lr.status, time.Since(start))
	}
}

// TestFaultsAtStart checks Options.Faults: set before the first request,
// listed by the control surface, and an invalid one makes New panic.
func TestFaultsAtStart(t *testing.T) {
	want := []Fault{
		{Provider: ProviderCheckoutCom, Mode: FaultApplyThen500, Rate: 1},
		{Provider: ProviderSmartpay, Mode: FaultError500, Rate: 0.25},
	}
	e := newEnv(t, Options{Faults: want})
	var got faultList
	if err := jsonUnmarshal(e.do("GET", "/_sandbox/faults", nil, nil).body, &got); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got.Data); d != "" {
		t.Errorf("faults (-want +got):\n%s", d)
	}
	r := newRefundReq(e, ProviderCheckoutCom)
	if res, err := e.send(context.Background(), r); err != nil || res.StatusCode != 500 {
		t.Fatalf("%v %v", res, err)
	}
	if n := len(e.sb.Refunds(ProviderCheckoutCom, r.paymentID())); n != 1 {
		t.Errorf("%d refunds, want 1 (applied, then 500)", n)
	}
	defer func() {
		if recover() == nil {
			t.Error("New accepted an invalid fault")
		}
	}()
	New(Options{Faults: []Fault{{Provider: ProviderYoco, Mode: "explode", Rate: 1}}}).Close()
}
