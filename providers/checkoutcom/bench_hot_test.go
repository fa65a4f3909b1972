package checkoutcom_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/providers"
	"github.com/refundgate/refundgate/providers/checkoutcom"
)

// The hot paths of the adapter, through its exported surface only: the
// wire mapping of a refund (encode the request, decode the provider's
// documented answer, map it to the normalised refund) and webhook signature
// verification. Run with
//
//	go test -run '^$' -bench . -benchmem ./providers/checkoutcom/

const benchKey = "sk_test_5a4db0c0-7f53-4ccc-b0a6-d943decc3c31"

func benchRequest() *normalize.RefundRequest {
	return &normalize.RefundRequest{
		RefundID: "rf_01JD0000000000000000000000", PaymentID: "charge_test_8F3A796E242G73BD0AC3",
		Amount: 2000, Currency: "USD", Reason: normalize.ReasonRequestedByCustomer,
		Description: "The T-Shirt Store", Reference: "ORDER-1042", Metadata: map[string]string{"order": "1042"},
	}
}

// answerTransport answers every request with one body, in memory, so the
// benchmark measures the adapter and not the network.
type answerTransport struct {
	status int
	body   []byte
}

func (t answerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{StatusCode: t.status, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(t.body)), Request: r, ContentLength: int64(len(t.body))}, nil
}

func readSample(b *testing.B, name string) []byte {
	b.Helper()
	body, err := os.ReadFile("testdata/" + name)
	if err != nil {
		b.Fatal(err)
	}
	return body
}

func BenchmarkRefundMapping(b *testing.B) {
	body := readSample(b, "refund_response.json")
	b.Run("in-memory", func(b *testing.B) {
		p, err := providers.Open(providers.Config{Name: "cko", Type: checkoutcom.Type, BaseURL: "http://cko.invalid/v2", SecretKey: benchKey,
			Timeout: 5 * time.Second, HTTPClient: &http.Client{Transport: answerTransport{200, body}}})
		if err != nil {
			b.Fatal(err)
		}
		benchRefund(b, p)
	})
	b.Run("loopback", func(b *testing.B) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
		}))
		defer srv.Close()
		p, err := providers.Open(providers.Config{Name: "cko", Type: checkoutcom.Type, BaseURL: srv.URL + "/v2", SecretKey: benchKey, Timeout: 5 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		benchRefund(b, p)
	})
}

func benchRefund(b *testing.B, p providers.Provider) {
	req := benchRequest()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		r, err := p.Refund(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		if r.ProviderRefundID == "" {
			b.Fatal("no provider refund id")
		}
	}
}

func BenchmarkWebhook(b *testing.B) {
	body := readSample(b, "webhook_charge_refunded.json")
	p, err := providers.Open(providers.Config{Name: "cko", Type: checkoutcom.Type, BaseURL: "http://cko.invalid/v2", SecretKey: benchKey, WebhookSecret: benchKey})
	if err != nil {
		b.Fatal(err)
	}
	v, ok := p.(providers.WebhookVerifier)
	if !ok {
		b.Fatal("the checkoutcom adapter is not a WebhookVerifier")
	}
	m := hmac.New(sha256.New, []byte(benchKey))
	m.Write(body)
	h := http.Header{}
	h.Set(checkoutcom.SignatureHeader, hex.EncodeToString(m.Sum(nil)))
	now := time.Now()
	b.Run("verify", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if err := v.Verify(h, body, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verify+parse", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if err := v.Verify(h, body, now); err != nil {
				b.Fatal(err)
			}
			if _, err := v.Parse(h, body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
