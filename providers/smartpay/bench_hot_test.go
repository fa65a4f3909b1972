package smartpay_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/providers"
	"github.com/refundgate/refundgate/providers/smartpay"
	"github.com/refundgate/refundgate/sandbox"
)

// The hot paths of the adapter, through its exported surface only: the
// wire mapping of a refund (encode the request, decode the provider's
// documented answer, map it to the normalised refund) and webhook signature
// verification. Run with
//
//	go test -run '^$' -bench . -benchmem ./providers/smartpay/

func benchKeys() sandbox.ProviderKeys { return sandbox.DefaultKeys().Smartpay }

func benchRequest() *normalize.RefundRequest {
	return &normalize.RefundRequest{
		RefundID: "rf_01JD0000000000000000000000", PaymentID: "payment_test_z9Y8x7W6v5U4t3S2r1Q0pO",
		Amount: 500, Currency: "JPY", Reason: normalize.ReasonDuplicate,
		Description: "Returned item", Reference: "ORDER-1042", Metadata: map[string]string{"order": "1042"},
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
	body := readSample(b, "refund.json")
	k := benchKeys()
	b.Run("in-memory", func(b *testing.B) {
		p, err := providers.Open(providers.Config{Name: "sp", Type: smartpay.Type, BaseURL: "http://smartpay.invalid/v1", SecretKey: k.TestSecretKey,
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
		p, err := providers.Open(providers.Config{Name: "sp", Type: smartpay.Type, BaseURL: srv.URL + "/v1", SecretKey: k.TestSecretKey, Timeout: 5 * time.Second})
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

// base62Key decodes a Smartpay signing secret (A-Z a-z 0-9, 'A' = 0, each
// leading 'A' a zero byte), as Smartpay's SDKs do.
func base62Key(s string) []byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	n := new(big.Int)
	for i := 0; i < len(s); i++ {
		n.Mul(n, big.NewInt(62))
		n.Add(n, big.NewInt(int64(strings.IndexByte(alphabet, s[i]))))
	}
	zeros := len(s) - len(strings.TrimLeft(s, "A"))
	return append(make([]byte, zeros), n.Bytes()...)
}

func BenchmarkWebhook(b *testing.B) {
	body := readSample(b, "webhook_refund_created.json")
	k := benchKeys()
	p, err := providers.Open(providers.Config{Name: "sp", Type: smartpay.Type, BaseURL: "http://smartpay.invalid/v1", SecretKey: k.TestSecretKey, WebhookSecret: k.WebhookSecret})
	if err != nil {
		b.Fatal(err)
	}
	v, ok := p.(providers.WebhookVerifier)
	if !ok {
		b.Fatal("the smartpay adapter is not a WebhookVerifier")
	}
	now := time.Now()
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	m := hmac.New(sha256.New, base62Key(k.WebhookSecret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	h := http.Header{}
	h.Set(smartpay.HeaderTimestamp, ts)
	h.Set(smartpay.HeaderSignature, hex.EncodeToString(m.Sum(nil)))
	h.Set(smartpay.HeaderEventID, "evt_test_Zx9Yw8Vu7Ts6Rq5Po4Nm3L")
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
