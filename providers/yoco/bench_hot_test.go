package yoco_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/providers"
	"github.com/refundgate/refundgate/providers/yoco"
	"github.com/refundgate/refundgate/sandbox"
)

// The hot paths of the adapter, through its exported surface only: the
// wire mapping of a refund (encode the request, decode the provider's
// documented answer, map it to the normalised refund) and webhook signature
// verification. Run with
//
//	go test -run '^$' -bench . -benchmem ./providers/yoco/

func benchKeys() sandbox.ProviderKeys { return sandbox.DefaultKeys().Yoco }

func benchRequest() *normalize.RefundRequest {
	return &normalize.RefundRequest{
		RefundID: "rf_01JD0000000000000000000000", PaymentID: "ch_9LVKD8GnAj7f39DFbn4F16bE",
		Amount: 10000, Full: true, Currency: "ZAR", Reason: normalize.ReasonRequestedByCustomer,
		Reference: "ORDER-1042", Metadata: map[string]string{"order": "1042"},
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
	body := readSample(b, "refund_accepted.json")
	k := benchKeys()
	b.Run("in-memory", func(b *testing.B) {
		p, err := providers.Open(providers.Config{Name: "yoco", Type: yoco.Type, BaseURL: "http://yoco.invalid/api", SecretKey: k.TestSecretKey,
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
		p, err := providers.Open(providers.Config{Name: "yoco", Type: yoco.Type, BaseURL: srv.URL + "/api", SecretKey: k.TestSecretKey, Timeout: 5 * time.Second})
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
	body := readSample(b, "webhook_refund_succeeded.json")
	k := benchKeys()
	p, err := providers.Open(providers.Config{Name: "yoco", Type: yoco.Type, BaseURL: "http://yoco.invalid/api", SecretKey: k.TestSecretKey, WebhookSecret: k.WebhookSecret})
	if err != nil {
		b.Fatal(err)
	}
	v, ok := p.(providers.WebhookVerifier)
	if !ok {
		b.Fatal("the yoco adapter is not a WebhookVerifier")
	}
	wh, err := standardwebhooks.NewWebhook(k.WebhookSecret)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	sig, err := wh.Sign("evt_bench", now, body)
	if err != nil {
		b.Fatal(err)
	}
	h := http.Header{}
	h.Set(yoco.HeaderWebhookID, "evt_bench")
	h.Set(yoco.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(yoco.HeaderWebhookSignature, sig)
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
