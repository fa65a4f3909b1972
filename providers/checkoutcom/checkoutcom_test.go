package checkoutcom

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/providers"
	"github.com/refundgate/refundgate/providers/providertest"
	"github.com/refundgate/refundgate/sandbox"
)

const basePath = "/checkoutcom/v2"

func TestConformance(t *testing.T) {
	for _, live := range []bool{false, true} {
		t.Run(map[bool]string{false: "test", true: "live"}[live], func(t *testing.T) {
			sb := sandbox.New(sandbox.Options{})
			t.Cleanup(sb.Close)
			keys := sb.Keys().CheckoutCom
			key, missing := keys.TestSecretKey, "charge_test_MISSING0000000000000000"
			if live {
				key, missing = keys.LiveSecretKey, "charge_MISSING0000000000000000"
			}
			providertest.Run(t, &providertest.Harness{
				Handler:   sb.Handler(),
				BasePath:  basePath,
				SecretKey: key,
				New: func(baseURL, secret string) (providers.Provider, error) {
					return providers.Open(providers.Config{Name: "cko", Type: Type, BaseURL: baseURL, SecretKey: secret})
				},
				NewPayment: func(t *testing.T, amount int64) string {
					id, err := sb.CreatePayment(sandbox.ProviderCheckoutCom, amount, "ZAR", live)
					if err != nil {
						t.Fatal(err)
					}
					return id
				},
				NewOtherModePayment: func(t *testing.T, amount int64) string {
					id, err := sb.CreatePayment(sandbox.ProviderCheckoutCom, amount, "ZAR", !live)
					if err != nil {
						t.Fatal(err)
					}
					return id
				},
				Currency:         "ZAR",
				MissingPaymentID: missing,
				ProviderRefunds: func(t *testing.T, paymentID string) []providertest.Recorded {
					var out []providertest.Recorded
					for _, r := range sb.Refunds(sandbox.ProviderCheckoutCom, paymentID) {
						out = append(out, providertest.Recorded{ID: r.ID, Amount: r.Amount})
					}
					return out
				},
			})
		})
	}
}

// env is an adapter in front of a sandbox behind a counting proxy.
type env struct {
	sb    *sandbox.Sandbox
	proxy *providertest.Proxy
	p     *Client
	key   string
}

func newEnv(t *testing.T, live bool) *env {
	t.Helper()
	sb := sandbox.New(sandbox.Options{})
	t.Cleanup(sb.Close)
	proxy := providertest.NewProxy(sb.Handler())
	t.Cleanup(proxy.Close)
	key := sb.Keys().CheckoutCom.TestSecretKey
	if live {
		key = sb.Keys().CheckoutCom.LiveSecretKey
	}
	return &env{sb: sb, proxy: proxy, p: open(t, proxy.URL+basePath, key, ""), key: key}
}

func open(t *testing.T, base, key, webhookSecret string) *Client {
	t.Helper()
	p, err := New(providers.Config{Name: "cko", Type: Type, BaseURL: base, SecretKey: key, WebhookSecret: webhookSecret})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Client)
}

func (e *env) payment(t *testing.T, amount int64, currency string, live bool) string {
	t.Helper()
	id, err := e.sb.CreatePayment(sandbox.ProviderCheckoutCom, amount, currency, live)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ptr[T any](v T) *T { return &v }

func TestCapabilities(t *testing.T) {
	test := open(t, "http://x", "sk_test_55aedccc-7f53-4ccc-b0a6-d943decc3c31", "")
	want := providers.Capabilities{
		PaymentRef: providers.RefCharge, Partial: true, Multiple: true, Reasons: []normalize.Reason{},
		Idempotent: false, RequiresCurrency: false, Livemode: false,
		Limits: providers.Limits{MetadataPairs: 10, MetadataKeyLen: 100, MetadataValueLen: 100, DescriptionLen: 100, ReferenceLen: 100},
	}
	if diff := cmp.Diff(want, test.Capabilities()); diff != "" {
		t.Errorf("Capabilities (-want +got):\n%s", diff)
	}
	if live := open(t, "http://x", "sk_5a4db0c0-1e2d-4a3b-9c8d-7e6f5a4b3c2d", ""); !live.Capabilities().Livemode {
		t.Error("a live key (sk_…) gives Livemode false")
	}
	if _, err := providers.Open(providers.Config{Type: Type, BaseURL: "http://x", SecretKey: "sk_test_x", Options: map[string]any{"partial_refunds": true}}); err == nil {
		t.Error("an unknown option was accepted")
	}
	if _, err := New(providers.Config{Type: Type, BaseURL: "http://x"}); err == nil {
		t.Error("a missing secret key was accepted")
	}
}

// TestGoldenRefundResponse decodes the seed's response example.
func TestGoldenRefundResponse(t *testing.T) {
	var w wireCharge
	if err := json.Unmarshal(readTestdata(t, "refund_response.json"), &w); err != nil {
		t.Fatal(err)
	}
	got, err := w.refund()
	if err != nil {
		t.Fatal(err)
	}
	want := &normalize.ProviderRefund{ProviderRefundID: "charge_test_8C5A496E242M73BD0AE1", Status: normalize.StatusSucceeded,
		ProviderStatus: "Refunded", Amount: 2000, Currency: "USD", Livemode: false}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("refund (-want +got):\n%s", diff)
	}
}

// TestRefundDeclinedIsFailed shows a 2xxxx responseCode as a definite
// failure returned with a nil error.
func TestRefundDeclinedIsFailed(t *testing.T) {
	body := readTestdata(t, "refund_declined.json")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	defer srv.Close()
	p := open(t, srv.URL, "sk_test_k", "")
	got, err := p.Refund(context.Background(), &normalize.RefundRequest{RefundID: "rf_01JD3Q8Z6M2K4N7P9R1T3V5X7Z",
		PaymentID: "charge_test_8F3A796E242G73BD0AC3", Amount: 2000, Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	want := &normalize.ProviderRefund{ProviderRefundID: "charge_test_9D1B597F353N84CE1BF2", Status: normalize.StatusFailed,
		ProviderStatus: "Declined", Amount: 2000, Currency: "USD",
		Failure: &normalize.Failure{Code: normalize.CodeRefundDeclined, Message: "Checkout.com declined the refund (soft decline)",
			ProviderCode: "20005", ProviderMessage: "Declined - Do Not Honour"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("refund (-want +got):\n%s", diff)
	}
}

func TestGoldenHistory(t *testing.T) {
	var h wireHistory
	if err := json.Unmarshal(readTestdata(t, "history.json"), &h); err != nil {
		t.Fatal(err)
	}
	const pay = "charge_test_8F3A796E242G73BD0AC3"
	captured := time.Date(2018, 3, 22, 17, 58, 1, 0, time.UTC)
	base := normalize.ProviderState{PaymentID: pay, Currency: "USD", CapturedAmount: 5000, RefundedAmount: 2000,
		CapturedAt: &captured, PaymentStatus: "Captured"}
	tests := []struct {
		name string
		ref  normalize.LookupRef
		want *normalize.ProviderRefund
	}{
		{"by trackId", normalize.LookupRef{PaymentID: pay, RefundID: "TRK12345"},
			&normalize.ProviderRefund{ProviderRefundID: "charge_test_8C5A496E242M73BD0AE1", Status: normalize.StatusSucceeded,
				ProviderStatus: "Refunded", Amount: 2000, Currency: "USD"}},
		{"by provider id", normalize.LookupRef{PaymentID: pay, ProviderRefundID: "charge_test_8C5A496E242M73BD0AE1"},
			&normalize.ProviderRefund{ProviderRefundID: "charge_test_8C5A496E242M73BD0AE1", Status: normalize.StatusSucceeded,
				ProviderStatus: "Refunded", Amount: 2000, Currency: "USD"}},
		{"declined by trackId", normalize.LookupRef{PaymentID: pay, RefundID: "TRK99999"},
			&normalize.ProviderRefund{ProviderRefundID: "charge_test_9D1B597F353N84CE1BF2", Status: normalize.StatusFailed,
				ProviderStatus: "Declined", Amount: 3000, Currency: "USD",
				Failure: &normalize.Failure{Code: normalize.CodeRefundDeclined, Message: "Checkout.com declined the refund (soft decline)",
					ProviderCode: "20005", ProviderMessage: "Declined - Do Not Honour"}}},
		{"the capture's own trackId is no refund", normalize.LookupRef{PaymentID: pay, RefundID: "ORDER-77"}, nil},
		{"unknown", normalize.LookupRef{PaymentID: pay, RefundID: "rf_nope"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var capture *wireCharge
			for i := range h.Charges {
				if h.Charges[i].ID == pay {
					capture = &h.Charges[i]
				}
			}
			got, err := state(tc.ref, capture, h.Charges)
			if err != nil {
				t.Fatal(err)
			}
			want := base
			want.Refund = tc.want
			if diff := cmp.Diff(&want, got); diff != "" {
				t.Errorf("state (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRequestBody shows what is sent: raw key, path and the mapped body.
func TestRequestBody(t *testing.T) {
	type seen struct {
		auth, path string
		body       map[string]any
	}
	var mu sync.Mutex
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		json.Unmarshal(b, &m)
		mu.Lock()
		got = append(got, seen{r.Header.Get("Authorization"), r.URL.Path, m})
		mu.Unlock()
		w.Write(readTestdata(t, "refund_response.json"))
	}))
	defer srv.Close()
	const key = "sk_test_55aedccc-7f53-4ccc-b0a6-d943decc3c31"
	p := open(t, srv.URL+"/v2/", key, "")
	tests := []struct {
		name string
		req  normalize.RefundRequest
		want map[string]any
	}{
		{"every field", normalize.RefundRequest{RefundID: "rf_01JD3Q8Z6M2K4N7P9R1T3V5X7Z", PaymentID: "charge_test_F2B8BA4C175P76BD3E07",
			Amount: 2000, Currency: "USD", Reason: normalize.ReasonDuplicate, Description: "The T-Shirt Store", Reference: "ORDER-1042",
			Metadata:  map[string]string{"order": "1042"},
			LineItems: []normalize.LineItem{{ID: "tee123", Amount: ptr(int64(2000)), Quantity: ptr(int64(1))}, {ID: "bare"}}},
			map[string]any{"value": 2000.0, "trackId": "rf_01JD3Q8Z6M2K4N7P9R1T3V5X7Z", "description": "The T-Shirt Store",
				"metadata": map[string]any{"order": "1042"}, "udf1": "ORDER-1042", "udf2": "duplicate",
				"products": []any{map[string]any{"sku": "tee123", "price": 2000.0, "quantity": 1.0}, map[string]any{"sku": "bare"}}}},
		{"full refund of an unknown amount omits value", normalize.RefundRequest{RefundID: "rf_2", PaymentID: "charge_test_A", Full: true},
			map[string]any{"trackId": "rf_2"}},
		{"JPY is a full value", normalize.RefundRequest{RefundID: "rf_3", PaymentID: "charge_test_A", Amount: 500, Currency: "JPY"},
			map[string]any{"value": 500.0, "trackId": "rf_3"}},
		{"KWD in fils", normalize.RefundRequest{RefundID: "rf_4", PaymentID: "charge_test_A", Amount: 1250, Currency: "KWD"},
			map[string]any{"value": 1250.0, "trackId": "rf_4"}},
		{"CLP is divided by 100 at Checkout.com", normalize.RefundRequest{RefundID: "rf_5", PaymentID: "charge_test_A", Amount: 1000, Currency: "CLP"},
			map[string]any{"value": 100000.0, "trackId": "rf_5"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			got = nil
			mu.Unlock()
			if _, err := p.Refund(context.Background(), &tc.req); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 1 {
				t.Fatalf("%d requests, want 1", len(got))
			}
			if got[0].auth != key {
				t.Errorf("Authorization = %q, want the raw key", got[0].auth)
			}
			if want := "/v2/charges/" + tc.req.PaymentID + "/refund"; got[0].path != want {
				t.Errorf("path = %q, want %q", got[0].path, want)
			}
			if diff := cmp.Diff(tc.want, got[0].body); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
}

// TestErrorClassification runs every documented (and some undocumented)
// answer through Refund.
func TestErrorClassification(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		body        string
		code        normalize.Code
		outcome     providers.Outcome
		pcode, pmsg string
		details     []normalize.FieldError
	}{
		{"validation (golden)", 400, string(readTestdata(t, "error_validation.json")), normalize.CodeValidationFailed, providers.OutcomeDeclined,
			"70000", "Validation error", []normalize.FieldError{
				{Field: "amount", Code: "70001", Message: "Value must be a positive integer"},
				{Field: "refund_id", Code: "70002", Message: "Track id must not exceed 50 characters"}}},
		{"not found (golden)", 404, string(readTestdata(t, "error_not_found.json")), normalize.CodePaymentNotFound, providers.OutcomeDeclined,
			"83014", "Charge not found", nil},
		{"404 without body", 404, "", normalize.CodePaymentNotFound, providers.OutcomeDeclined, "", "", nil},
		{"already refunded", 422, `{"errorCode":"83004","message":"Charge already fully refunded"}`, normalize.CodePaymentFullyRefunded, providers.OutcomeDeclined,
			"83004", "Charge already fully refunded", nil},
		{"over-refund", 422, `{"errorCode":"83013","message":"Refund value exceeds the remaining captured value","errors":["x"]}`,
			normalize.CodeAmountExceedsRefundable, providers.OutcomeDeclined, "83013", "Refund value exceeds the remaining captured value", nil},
		{"authorization id", 422, `{"errorCode":"83005","message":"Charge cannot be refunded"}`, normalize.CodeValidationFailed, providers.OutcomeDeclined,
			"83005", "Charge cannot be refunded", []normalize.FieldError{{Field: "payment_id", Code: "83005", Message: codes["83005"].message}}},
		{"numeric errorCode", 422, `{"errorCode":83004,"message":"m"}`, normalize.CodePaymentFullyRefunded, providers.OutcomeDeclined, "83004", "m", nil},
		{"unauthorised", 401, `{"errorCode":"80001","message":"Unauthorised"}`, normalize.CodeProviderAuthFailed, providers.OutcomeDeclined, "80001", "Unauthorised", nil},
		{"forbidden without body", 403, "", normalize.CodeProviderAuthFailed, providers.OutcomeDeclined, "", "", nil},
		{"object errors", 400, `{"errorCode":"70000","message":"Validation error","errors":[{"message":"bad udf"}],"errorMessageCodes":[70004]}`,
			normalize.CodeValidationFailed, providers.OutcomeDeclined, "70000", "Validation error",
			[]normalize.FieldError{{Field: "reference", Code: "70004", Message: "bad udf"}}},
		{"unknown 422 code", 422, `{"errorCode":"83999","message":"Something new"}`, normalize.CodeRefundDeclined, providers.OutcomeDeclined, "83999", "Something new", nil},
		{"409 html", 409, `<html>conflict</html>`, normalize.CodeRefundDeclined, providers.OutcomeDeclined, "", "", nil},
		{"429", 429, `{"message":"slow down"}`, normalize.CodeRateLimited, providers.OutcomeRetryLater, "", "slow down", nil},
		{"500", 500, `{"errorCode":"50000","message":"Internal server error"}`, normalize.CodeProviderError, providers.OutcomeUnknown, "50000", "Internal server error", nil},
		{"502 html", 502, `<html>bad gateway</html>`, normalize.CodeProviderError, providers.OutcomeUnknown, "", "", nil},
		{"302", 302, ``, normalize.CodeProviderError, providers.OutcomeUnknown, "", "", nil},
		{"200 malformed", 200, `{"id": "charge_test_x", "value": `, normalize.CodeProviderError, providers.OutcomeUnknown, "", "unreadable answer", nil},
		{"200 without id", 200, `{}`, normalize.CodeProviderError, providers.OutcomeUnknown, "", "unreadable answer", nil},
		{"200 fractional value", 200, `{"id":"charge_test_x","value":"12.5","responseCode":"10000"}`, normalize.CodeProviderError, providers.OutcomeUnknown, "", "unreadable answer", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.status == 302 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			p := open(t, srv.URL, "sk_test_k3y", "")
			p.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			_, err := p.Refund(context.Background(), &normalize.RefundRequest{RefundID: "rf_1", PaymentID: "charge_test_A", Amount: 100})
			var pe *providers.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *providers.Error", err)
			}
			if p.ErrorCode(err) != tc.code || pe.Outcome != tc.outcome {
				t.Errorf("code %q outcome %v, want %q %v (err %v)", p.ErrorCode(err), pe.Outcome, tc.code, tc.outcome, err)
			}
			if pe.ProviderCode != tc.pcode || pe.ProviderMessage != tc.pmsg || pe.StatusCode != tc.status {
				t.Errorf("provider code %q message %q status %d, want %q %q %d", pe.ProviderCode, pe.ProviderMessage, pe.StatusCode, tc.pcode, tc.pmsg, tc.status)
			}
			if diff := cmp.Diff(tc.details, pe.Details); diff != "" {
				t.Errorf("details (-want +got):\n%s", diff)
			}
			if want := providers.Excerpt([]byte(tc.body)); pe.Body != want {
				t.Errorf("body excerpt %q, want %q", pe.Body, want)
			}
		})
	}
}

// TestDeclineTable: a 2xx answer is classified by its responseCode alone:
// 1xxxx approved, 2xxxx soft decline, 3xxxx hard decline, 4xxxx risk, each
// decline a failed refund with refund_declined keeping the provider's code
// and message, and a nil error (the provider answered definitely).
func TestDeclineTable(t *testing.T) {
	tests := []struct {
		code, message string
		status        normalize.Status
		kind          string
	}{
		{"10000", "Approved", normalize.StatusSucceeded, ""},
		{"10100", "Approved - Risk", normalize.StatusSucceeded, ""},
		{"20005", "Declined - Do Not Honour", normalize.StatusFailed, "Checkout.com declined the refund (soft decline)"},
		{"20051", "Insufficient Funds", normalize.StatusFailed, "Checkout.com declined the refund (soft decline)"},
		{"30004", "Pick Up Card", normalize.StatusFailed, "Checkout.com declined the refund (hard decline)"},
		{"40101", "Risk Blocked Transaction", normalize.StatusFailed, "Checkout.com declined the refund (risk)"},
	}
	for _, tc := range tests {
		t.Run(tc.code, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, `{"id":"charge_test_R","originalId":"charge_test_A","liveMode":false,"value":700,"currency":"EUR",`+
					`"trackId":"rf_1","responseCode":%q,"responseMessage":%q,"status":"Refunded"}`, tc.code, tc.message)
			}))
			defer srv.Close()
			got, err := open(t, srv.URL, "sk_test_k", "").Refund(context.Background(),
				&normalize.RefundRequest{RefundID: "rf_1", PaymentID: "charge_test_A", Amount: 700, Currency: "EUR"})
			if err != nil {
				t.Fatalf("a definite answer is not an error: %v", err)
			}
			want := &normalize.ProviderRefund{ProviderRefundID: "charge_test_R", Status: tc.status, ProviderStatus: "Refunded",
				Amount: 700, Currency: "EUR"}
			if tc.status == normalize.StatusFailed {
				want.Failure = &normalize.Failure{Code: normalize.CodeRefundDeclined, Message: tc.kind, ProviderCode: tc.code, ProviderMessage: tc.message}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("refund (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGoldenSeedRequest: the body the adapter sends for the seed's example
// refund has the seed's field names and values (the seed sends value as a
// numeric string; the adapter sends the integer).
func TestGoldenSeedRequest(t *testing.T) {
	var sent []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent, _ = io.ReadAll(r.Body)
		w.Write(readTestdata(t, "refund_response.json"))
	}))
	defer srv.Close()
	p := open(t, srv.URL, "sk_test_55aedccc-7f53-4ccc-b0a6-d943decc3c31", "")
	_, err := p.Refund(context.Background(), &normalize.RefundRequest{RefundID: "TRK12345", PaymentID: "charge_test_F2B8BA4C175P76BD3E07",
		Amount: 2000, Currency: "USD", Description: "The T-Shirt Store", Reason: normalize.ReasonRequestedByCustomer,
		LineItems: []normalize.LineItem{{ID: "tee123", Amount: ptr(int64(2000)), Quantity: ptr(int64(1))}}})
	if err != nil {
		t.Fatal(err)
	}
	seed := readTestdata(t, "refund_request_seed.json")
	var seedKeys, sentKeys struct {
		Top      map[string]json.RawMessage
		Products []map[string]json.RawMessage
	}
	for _, x := range []struct {
		b   []byte
		dst *struct {
			Top      map[string]json.RawMessage
			Products []map[string]json.RawMessage
		}
	}{{seed, &seedKeys}, {sent, &sentKeys}} {
		if err := json.Unmarshal(x.b, &x.dst.Top); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(x.dst.Top["products"], &x.dst.Products); err != nil {
			t.Fatal(err)
		}
	}
	for k := range sentKeys.Top {
		if _, ok := seedKeys.Top[k]; !ok {
			t.Errorf("the adapter sends %q, which the seed's request does not have", k)
		}
	}
	for k := range sentKeys.Products[0] {
		if _, ok := seedKeys.Products[0][k]; !ok {
			t.Errorf("the adapter sends products[].%q, which the seed's request does not have", k)
		}
	}
	type shape struct {
		Value       flexInt `json:"value"`
		TrackID     string  `json:"trackId"`
		Description string  `json:"description"`
		Products    []struct {
			SKU      string  `json:"sku"`
			Price    flexInt `json:"price"`
			Quantity flexInt `json:"quantity"`
		} `json:"products"`
	}
	var want, got shape
	if err := json.Unmarshal(seed, &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(sent, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sent body against the seed's (-seed +sent):\n%s", diff)
	}
	if !bytes.Contains(sent, []byte(`"value":2000`)) {
		t.Errorf("value is not sent as an integer: %s", sent)
	}
}

// TestDescriptionLimitOption: the description limit is the account's
// option (the seed documents none), 100 by default, 0 for none.
func TestDescriptionLimitOption(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(readTestdata(t, "refund_response.json"))
	}))
	defer srv.Close()
	desc := strings.Repeat("d", 200)
	for _, tc := range []struct {
		opts  map[string]any
		limit int
		ok    bool
	}{
		{nil, 100, false},
		{map[string]any{"description_max_length": 255}, 255, true},
		{map[string]any{"description_max_length": 150}, 150, false},
		{map[string]any{"description_max_length": 0}, 0, true},
	} {
		p, err := New(providers.Config{Name: "cko", Type: Type, BaseURL: srv.URL, SecretKey: "sk_test_k", Options: tc.opts})
		if err != nil {
			t.Fatalf("%v: %v", tc.opts, err)
		}
		if got := p.Capabilities().Limits.DescriptionLen; got != tc.limit {
			t.Errorf("%v: DescriptionLen = %d, want %d", tc.opts, got, tc.limit)
		}
		_, err = p.Refund(context.Background(), &normalize.RefundRequest{RefundID: "rf_1", PaymentID: "charge_test_A", Amount: 1, Description: desc})
		if tc.ok && err != nil {
			t.Errorf("%v: a 200-character description: %v", tc.opts, err)
		}
		var ne *normalize.Error
		if !tc.ok && (!errors.As(err, &ne) || ne.Code != normalize.CodeProviderLimitExceeded || ne.Param != "description" ||
			!strings.Contains(ne.Message, fmt.Sprint("at most ", tc.limit))) {
			t.Errorf("%v: a 200-character description: %v, want provider_limit_exceeded naming %d", tc.opts, err, tc.limit)
		}
	}
	for _, bad := range []map[string]any{{"description_max_length": -1}, {"description_max_length": "long"}, {"description_limit": 5}} {
		if _, err := New(providers.Config{Type: Type, BaseURL: srv.URL, SecretKey: "sk_test_k", Options: bad}); err == nil {
			t.Errorf("options %v were accepted", bad)
		}
	}
}

func TestLookupErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.Contains(r.URL.Path, "gone"):
			w.WriteHeader(404)
			io.WriteString(w, `{"errorCode":"83014","message":"Charge not found"}`)
		case strings.Contains(r.URL.Path, "teapot"):
			w.WriteHeader(418)
		default:
			w.WriteHeader(503)
		}
	}))
	defer srv.Close()
	p := open(t, srv.URL, "sk_test_k", "")
	for id, want := range map[string]normalize.Code{"charge_test_gone": normalize.CodePaymentNotFound,
		"charge_test_teapot": normalize.CodeProviderError, "charge_test_down": normalize.CodeProviderError} {
		_, err := p.Lookup(context.Background(), normalize.LookupRef{PaymentID: id})
		if p.ErrorCode(err) != want {
			t.Errorf("Lookup %s: %v, want %s", id, err, want)
		}
	}
}

func TestModeMismatchBeforeAnyRequest(t *testing.T) {
	for _, live := range []bool{false, true} {
		e := newEnv(t, live)
		other := e.payment(t, 1000, "ZAR", !live)
		_, err := e.p.Refund(context.Background(), &normalize.RefundRequest{RefundID: "rf_1", PaymentID: other, Amount: 1000, Currency: "ZAR"})
		var ne *normalize.Error
		if !errors.As(err, &ne) || ne.Code != normalize.CodeModeMismatch || ne.Param != "payment_id" {
			t.Errorf("live=%v Refund of a %v charge: %v, want mode_mismatch on payment_id", live, !live, err)
		}
		if providers.OutcomeOf(err) != providers.OutcomeNotSent {
			t.Errorf("outcome %v, want not_sent", providers.OutcomeOf(err))
		}
		if _, err := e.p.Lookup(context.Background(), normalize.LookupRef{PaymentID: other}); e.p.ErrorCode(err) != normalize.CodeModeMismatch {
			t.Errorf("live=%v Lookup of a %v charge: %v, want mode_mismatch", live, !live, err)
		}
		if n := e.proxy.Requests(); n != 0 {
			t.Errorf("live=%v: %d HTTP requests, want 0", live, n)
		}
		if n := len(e.sb.Refunds(sandbox.ProviderCheckoutCom, other)); n != 0 {
			t.Errorf("%d refunds at the provider, want 0", n)
		}
	}
}

func TestLimitsBeforeAnyRequest(t *testing.T) {
	e := newEnv(t, false)
	pay := e.payment(t, 1000, "ZAR", false)
	long := strings.Repeat("x", 101)
	eleven := map[string]string{}
	for i := range 11 {
		eleven[fmt.Sprint("k", i)] = "v"
	}
	tests := []struct {
		name  string
		mod   func(r *normalize.RefundRequest)
		field string
		limit string
	}{
		{"metadata pairs", func(r *normalize.RefundRequest) { r.Metadata = eleven }, "metadata", "at most 10"},
		{"metadata key", func(r *normalize.RefundRequest) { r.Metadata = map[string]string{long: "v"} }, "metadata." + long, "at most 100"},
		{"metadata value", func(r *normalize.RefundRequest) { r.Metadata = map[string]string{"k": long} }, "metadata.k", "at most 100"},
		{"reference (udf1)", func(r *normalize.RefundRequest) { r.Reference = long }, "reference", "at most 100"},
		{"description", func(r *normalize.RefundRequest) { r.Description = long }, "description", "at most 100"},
		{"KWD not in tens", func(r *normalize.RefundRequest) { r.Currency, r.Amount = "KWD", 1005 }, "amount", "multiples of 10"},
		{"CLF fraction", func(r *normalize.RefundRequest) { r.Currency, r.Amount = "CLF", 12345 }, "amount", "cannot express"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := &normalize.RefundRequest{RefundID: "rf_1", PaymentID: pay, Amount: 1000, Currency: "ZAR"}
			tc.mod(req)
			_, err := e.p.Refund(context.Background(), req)
			var ne *normalize.Error
			if !errors.As(err, &ne) || ne.Code != normalize.CodeProviderLimitExceeded || ne.Param != tc.field || !strings.Contains(ne.Message, tc.limit) {
				t.Fatalf("err = %#v, want provider_limit_exceeded on %s naming %q", err, tc.field, tc.limit)
			}
		})
	}
	// The limits themselves pass.
	ten := map[string]string{}
	for i := range 10 {
		ten[fmt.Sprint("k", i)+strings.Repeat("k", 97)] = strings.Repeat("v", 100)
	}
	if n := e.proxy.Requests(); n != 0 {
		t.Fatalf("%d HTTP requests for refused refunds, want 0", n)
	}
	r, err := e.p.Refund(context.Background(), &normalize.RefundRequest{RefundID: strings.Repeat("r", 50), PaymentID: pay, Amount: 1000,
		Currency: "ZAR", Metadata: ten, Reference: long[:100], Description: long[:100]})
	if err != nil || r.Status != normalize.StatusSucceeded {
		t.Fatalf("refund at the limits: %+v %v", r, err)
	}
	if _, err := e.p.Refund(context.Background(), &normalize.RefundRequest{RefundID: strings.Repeat("r", 51), PaymentID: pay, Amount: 1, Currency: "ZAR"}); err == nil {
		t.Error("a refund id longer than trackId's 50 characters was sent")
	}
}

// TestPartialRefundsAndLookup refunds in parts up to the captured value and
// finds a refund whose answer was lost (applied, then 500) by its trackId.
func TestPartialRefundsAndLookup(t *testing.T) {
	e := newEnv(t, true)
	pay := e.payment(t, 10000, "USD", true)
	ctx := context.Background()
	st, err := e.p.Lookup(ctx, normalize.LookupRef{PaymentID: pay})
	if err != nil {
		t.Fatal(err)
	}
	if st.CapturedAmount != 10000 || st.RefundedAmount != 0 || st.Currency != "USD" || !st.Livemode || st.CapturedAt == nil || st.PaymentStatus != "Captured" || st.Refund != nil {
		t.Fatalf("Lookup before any refund: %+v", st)
	}
	r1, err := e.p.Refund(ctx, &normalize.RefundRequest{RefundID: "rf_01JD3Q8Z6M2K4N7P9R1T3V5X7A", PaymentID: pay, Amount: 3000, Currency: "USD"})
	if err != nil || r1.Status != normalize.StatusSucceeded || r1.Amount != 3000 || !r1.Livemode || r1.ProviderStatus != "Refunded" {
		t.Fatalf("first partial: %+v %v", r1, err)
	}
	lost := &normalize.RefundRequest{RefundID: "rf_01JD3Q8Z6M2K4N7P9R1T3V5X7B", PaymentID: pay, Amount: 4000, Currency: "USD"}
	e.proxy.SetFault(providertest.FaultApplyThen500)
	_, err = e.p.Refund(ctx, lost)
	e.proxy.SetFault(providertest.FaultNone)
	if providers.OutcomeOf(err) != providers.OutcomeUnknown {
		t.Fatalf("applied then 500: %v, want unknown", err)
	}
	st, err = e.p.Lookup(ctx, normalize.LookupRef{PaymentID: pay, RefundID: lost.RefundID})
	if err != nil {
		t.Fatal(err)
	}
	recs := e.sb.Refunds(sandbox.ProviderCheckoutCom, pay)
	if len(recs) != 2 {
		t.Fatalf("provider holds %d refunds, want 2", len(recs))
	}
	want := &normalize.ProviderRefund{ProviderRefundID: recs[1].ID, Status: normalize.StatusSucceeded, ProviderStatus: "Refunded",
		Amount: 4000, Currency: "USD", Livemode: true}
	if diff := cmp.Diff(want, st.Refund); diff != "" {
		t.Errorf("Lookup by trackId (-want +got):\n%s", diff)
	}
	if st.CapturedAmount != 10000 || st.RefundedAmount != 7000 {
		t.Errorf("captured %d refunded %d, want 10000 and 7000", st.CapturedAmount, st.RefundedAmount)
	}
	_, err = e.p.Refund(ctx, &normalize.RefundRequest{RefundID: "rf_over", PaymentID: pay, Amount: 3001, Currency: "USD"})
	if e.p.ErrorCode(err) != normalize.CodeAmountExceedsRefundable || providers.OutcomeOf(err) != providers.OutcomeDeclined {
		t.Errorf("over-refund: %v, want amount_exceeds_refundable, declined", err)
	}
	rest, err := e.p.Refund(ctx, &normalize.RefundRequest{RefundID: "rf_rest", PaymentID: pay, Full: true, Currency: "USD"})
	if err != nil || rest.Amount != 3000 {
		t.Fatalf("full refund of the rest: %+v %v", rest, err)
	}
	_, err = e.p.Refund(ctx, &normalize.RefundRequest{RefundID: "rf_again", PaymentID: pay, Full: true})
	if e.p.ErrorCode(err) != normalize.CodePaymentFullyRefunded {
		t.Errorf("refund of a fully refunded charge: %v, want payment_fully_refunded", err)
	}
	auth, _ := e.sb.CheckoutComAuthorizationID(pay)
	_, err = e.p.Refund(ctx, &normalize.RefundRequest{RefundID: "rf_auth", PaymentID: auth, Amount: 1})
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Code != normalize.CodeValidationFailed || len(pe.Details) != 1 || pe.Details[0].Field != "payment_id" {
		t.Errorf("refund of the authorization id: %#v, want validation_failed on payment_id", err)
	}
}

func sign(key string, body []byte) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func TestWebhookVerifyAndParse(t *testing.T) {
	const key = "sk_test_55aedccc-7f53-4ccc-b0a6-d943decc3c31"
	body := readTestdata(t, "webhook_charge_refunded.json")
	p := open(t, "http://x", key, "")
	hdr := func(sig string) http.Header { return http.Header{"Cko-Signature": {sig}} }
	now := time.Now()
	if err := p.Verify(hdr(sign(key, body)), body, now); err != nil {
		t.Errorf("a body signed as documented: %v", err)
	}
	if err := p.Verify(hdr(strings.ToUpper(sign(key, body))), body, now); err != nil {
		t.Errorf("an uppercase hex signature: %v", err)
	}
	tampered := []byte(strings.Replace(string(body), "2000", "9000", 1))
	for name, h := range map[string]http.Header{
		"tampered body": hdr(sign(key, body)),
		"wrong secret":  hdr(sign("sk_test_other", tampered)),
		"not hex":       hdr("zz" + key),
		"missing":       {},
	} {
		err := p.Verify(h, tampered, now)
		if err == nil {
			t.Errorf("%s: verified", name)
		} else if strings.Contains(err.Error(), key) {
			t.Errorf("%s: the secret appears in %v", name, err)
		}
	}
	// A configured webhook secret replaces the secret key.
	ws := open(t, "http://x", key, "whsec_other")
	if err := ws.Verify(hdr(sign("whsec_other", body)), body, now); err != nil {
		t.Errorf("webhook secret: %v", err)
	}
	if err := ws.Verify(hdr(sign(key, body)), body, now); err == nil {
		t.Error("with a webhook secret set, the secret key still verifies")
	}

	got, err := p.Parse(hdr(""), body)
	if err != nil {
		t.Fatal(err)
	}
	want := []normalize.WebhookEvent{{ID: "charge.refunded:charge_test_8C5A496E242M73BD0AE1", Type: "charge.refunded",
		RefundID: "TRK12345", ProviderRefundID: "charge_test_8C5A496E242M73BD0AE1", PaymentID: "charge_test_8F3A796E242G73BD0AC3",
		Status: normalize.StatusSucceeded, ProviderStatus: "Refunded", Amount: 2000, Currency: "USD"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
	declined := fmt.Sprintf(`{"eventType":"charge.refunded","message":%s}`, readTestdata(t, "refund_declined.json"))
	got, err = p.Parse(nil, []byte(declined))
	if err != nil || len(got) != 1 || got[0].Status != normalize.StatusFailed || got[0].Failure == nil || got[0].Failure.ProviderCode != "20005" {
		t.Errorf("declined refund event: %+v %v", got, err)
	}
	got, err = p.Parse(nil, []byte(`{"eventType":"charge.captured","message":{"id":"charge_test_C","trackId":"ORDER-1","responseCode":"10000"}}`))
	if err != nil || len(got) != 1 || got[0].Status != "" || got[0].RefundID != "" || got[0].PaymentID != "charge_test_C" {
		t.Errorf("non-refund event: %+v %v", got, err)
	}
	for _, bad := range []string{`{`, `{"eventType":"charge.refunded"}`, `{"message":{"id":"x"}}`} {
		if _, err := p.Parse(nil, []byte(bad)); err == nil {
			t.Errorf("Parse(%s) = nil error", bad)
		}
	}
}

// TestWebhookFromSandbox verifies and parses the webhook the simulator
// sends for a refund, signed with the secret key of the charge's mode.
func TestWebhookFromSandbox(t *testing.T) {
	type delivery struct {
		h    http.Header
		body []byte
	}
	got := make(chan delivery, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case got <- delivery{r.Header.Clone(), b}:
		default:
		}
	}))
	defer hook.Close()
	e := newEnv(t, false)
	e.sb.SetWebhookURL(sandbox.ProviderCheckoutCom, hook.URL)
	pay := e.payment(t, 1000, "EUR", false)
	r, err := e.p.Refund(context.Background(), &normalize.RefundRequest{RefundID: "rf_hook", PaymentID: pay, Amount: 600, Currency: "EUR"})
	if err != nil {
		t.Fatal(err)
	}
	var d delivery
	select {
	case d = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook within 10s")
	}
	if err := e.p.Verify(d.h, d.body, time.Now()); err != nil {
		t.Fatalf("Verify of the sandbox's webhook: %v", err)
	}
	evs, err := e.p.Parse(d.h, d.body)
	if err != nil {
		t.Fatal(err)
	}
	want := []normalize.WebhookEvent{{ID: "charge.refunded:" + r.ProviderRefundID, Type: "charge.refunded", RefundID: "rf_hook",
		ProviderRefundID: r.ProviderRefundID, PaymentID: pay, Status: normalize.StatusSucceeded, ProviderStatus: "Refunded",
		Amount: 600, Currency: "EUR"}}
	if diff := cmp.Diff(want, evs); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
}

// TestSecretNeverInErrors has a provider echo the key everywhere it can.
func TestSecretNeverInErrors(t *testing.T) {
	const key = "sk_test_55aedccc-7f53-4ccc-b0a6-d943decc3c31"
	const whsec = "whsec_do_not_leak_me"
	for _, status := range []int{200, 400, 401, 404, 422, 500} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			a := r.Header.Get("Authorization")
			w.WriteHeader(status)
			if status == 200 {
				fmt.Fprintf(w, `{"id":"%s","value":"%s"}`, a, a)
				return
			}
			fmt.Fprintf(w, `{"errorCode":"%s %s","message":"bad key %s","eventId":"%s","errors":["%s"],"errorMessageCodes":["%s"]}`, a, whsec, a, a, a, a)
		}))
		p := open(t, srv.URL, key, whsec)
		_, err := p.Refund(context.Background(), &normalize.RefundRequest{RefundID: "rf_1", PaymentID: "charge_test_A", Amount: 100})
		_, lerr := p.Lookup(context.Background(), normalize.LookupRef{PaymentID: "charge_test_A"})
		srv.Close()
		for _, err := range []error{err, lerr} {
			if err == nil {
				t.Fatalf("status %d: no error", status)
			}
			text := fmt.Sprintf("%v %+v %#v", err, err, err)
			var pe *providers.Error
			if errors.As(err, &pe) {
				text += pe.Body + pe.ProviderMessage + pe.ProviderCode + pe.RequestID + fmt.Sprint(pe.Details)
			}
			if strings.Contains(text, key) || strings.Contains(text, whsec) {
				t.Errorf("status %d: a secret appears in %q", status, text)
			}
		}
	}
}

func TestRegistered(t *testing.T) {
	if !providers.Known(Type) {
		t.Fatalf("%q is not registered", Type)
	}
}
