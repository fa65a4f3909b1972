package sandbox

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkRefunds measures refund-creating requests through the handler,
// in parallel, one fresh payment per request.
func BenchmarkRefunds(b *testing.B) {
	for _, p := range []string{ProviderYoco, ProviderCheckoutCom, ProviderSmartpay} {
		b.Run(p, func(b *testing.B) {
			sb := New(Options{Seed: 9, YocoSettleDelay: 50 * time.Millisecond})
			defer sb.Close()
			h := sb.Handler()
			k := sb.Keys()
			var n atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					var req *http.Request
					switch p {
					case ProviderYoco:
						id, _ := sb.CreatePayment(p, 1000, "ZAR", false)
						req = httptest.NewRequest("POST", "/yoco/api/checkouts/"+id+"/refund", strings.NewReader(`{"metadata":{"o":"1"}}`))
						req.Header.Set("Authorization", "Bearer "+k.Yoco.TestSecretKey)
						req.Header.Set("Idempotency-Key", "k"+strconv.FormatInt(n.Add(1), 10))
					case ProviderCheckoutCom:
						id, _ := sb.CreatePayment(p, 1000, "USD", false)
						req = httptest.NewRequest("POST", "/checkoutcom/v2/charges/"+id+"/refund", strings.NewReader(`{"value":500,"trackId":"T"}`))
						req.Header.Set("Authorization", k.CheckoutCom.TestSecretKey)
					default:
						id, _ := sb.CreatePayment(p, 1000, "JPY", false)
						req = httptest.NewRequest("POST", "/smartpay/v1/refunds", strings.NewReader(`{"payment":"`+id+`","currency":"JPY","reason":"fraudulent"}`))
						req.Header.Set("Authorization", "Basic "+k.Smartpay.TestSecretKey)
						req.Header.Set("Idempotency-Key", "k"+strconv.FormatInt(n.Add(1), 10))
					}
					w := httptest.NewRecorder()
					h.ServeHTTP(w, req)
					if w.Code >= 300 {
						b.Fatalf("%d %s", w.Code, w.Body)
					}
				}
			})
		})
	}
}
