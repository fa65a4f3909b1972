package sandbox

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeAllThreeOnOneAddress runs Serve on a real listener, as
// `refundgate sandbox --addr` does, and checks each provider answers under
// its prefix with its own auth scheme, beside the control surface; then that
// shutting down does not wait for a request held by the hang fault.
func TestServeAllThreeOnOneAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sb := New(Options{Seed: 5})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, sb) }()
	base := "http://" + ln.Addr().String()
	k := sb.Keys()
	yoco, _ := sb.CreatePayment(ProviderYoco, 1000, "ZAR", false)
	cko, _ := sb.CreatePayment(ProviderCheckoutCom, 1000, "EUR", false)
	sp, _ := sb.CreatePayment(ProviderSmartpay, 1000, "JPY", false)
	for _, tc := range []struct {
		method, path, auth, body string
		status                   int
	}{
		{"GET", "/_sandbox/keys", "", "", 200},
		{"GET", "/yoco/api/checkouts/" + yoco, "Bearer " + k.Yoco.TestSecretKey, "", 200},
		{"POST", "/yoco/api/checkouts/" + yoco + "/refund", "Bearer " + k.Yoco.TestSecretKey, "", 202},
		{"GET", "/checkoutcom/v2/charges/" + cko, k.CheckoutCom.TestSecretKey, "", 200},
		{"POST", "/checkoutcom/v2/charges/" + cko + "/refund", k.CheckoutCom.TestSecretKey, `{"value":10}`, 200},
		{"POST", "/smartpay/v1/refunds", "Basic " + k.Smartpay.TestSecretKey, `{"payment":"` + sp + `","currency":"JPY","reason":"fraudulent","amount":10}`, 200},
		{"GET", "/smartpay/v1/refunds", "Basic " + k.Smartpay.TestSecretKey, "", 200},
		{"GET", "/yoco/api/checkouts/" + yoco, "", "", 403},
		{"GET", "/checkoutcom/v2/charges/" + cko, "", "", 401},
		{"GET", "/smartpay/v1/refunds", "", "", 401},
		{"GET", "/smartpay/v2/refunds", "", "", 404},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.status {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, res.StatusCode, b, tc.status)
		}
	}

	if err := sb.SetFault(Fault{Provider: ProviderCheckoutCom, Mode: FaultHang, Rate: 1}); err != nil {
		t.Fatal(err)
	}
	hung := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", base+"/checkoutcom/v2/charges/"+cko+"/refund", strings.NewReader(`{"value":10}`))
		req.Header.Set("Authorization", k.CheckoutCom.TestSecretKey)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			hung <- 0
			return
		}
		res.Body.Close()
		hung <- res.StatusCode
	}()
	eventually(t, "the request to hang", func() bool { return sb.hanging.Load() == 1 })
	start := time.Now()
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Serve did not return while a request hung")
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("shutdown took %v", el)
	}
	if st := <-hung; st != http.StatusServiceUnavailable {
		t.Errorf("the hung request got %d, want 503 at shutdown", st)
	}
}
