package providertest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/providers"
)

// The requests an adapter must refuse itself, before any HTTP request:
// fields over its declared limits, and an object of the other mode.

func wantLocal(t *testing.T, e *env, before int, err error, code normalize.Code, field, limit string) {
	t.Helper()
	var ne *normalize.Error
	if !errors.As(err, &ne) || ne.Code != code {
		t.Errorf("err = %v, want a %s refusal", err, code)
		return
	}
	if ne.Param != field {
		t.Errorf("%s names %q, want %q", code, ne.Param, field)
	}
	if limit != "" && !strings.Contains(ne.Message, limit) {
		t.Errorf("%s message %q does not name the limit (%q)", code, ne.Message, limit)
	}
	if got := e.p.ErrorCode(err); got != code {
		t.Errorf("ErrorCode = %q, want %q", got, code)
	}
	if o := providers.OutcomeOf(err); o != providers.OutcomeNotSent {
		t.Errorf("outcome %v, want not_sent", o)
	}
	if n := e.proxy.Requests() - before; n != 0 {
		t.Errorf("the refusal made %d HTTP requests, want 0", n)
	}
}

// testLimits derives, from Capabilities().Limits, one request over each
// declared limit (each refused with provider_limit_exceeded naming field and
// limit, before any HTTP request) and one request at every limit at once,
// which the provider must take: the declared limits are the provider's.
func testLimits(t *testing.T, h *Harness) {
	e := h.setup(t)
	l := e.p.Capabilities().Limits
	pay := h.NewPayment(t, 1000)
	pairs := l.MetadataPairs - l.ReservedMetadata
	key := func(i, n int) string {
		k := fmt.Sprintf("k%03d", i)
		if n > len(k) {
			k += strings.Repeat("x", n-len(k))
		}
		return k
	}
	one := int64(1)
	type over struct {
		name, field string
		limit       int
		edit        func(r *normalize.RefundRequest)
	}
	var cases []over
	if l.MetadataPairs > 0 {
		cases = append(cases, over{"metadata pairs", "metadata", pairs, func(r *normalize.RefundRequest) {
			r.Metadata = map[string]string{}
			for i := range pairs + 1 {
				r.Metadata[key(i, 0)] = "v"
			}
		}})
	}
	if n := l.MetadataKeyLen; n > 0 {
		long := key(0, n+1)
		cases = append(cases, over{"metadata key", "metadata." + long, n, func(r *normalize.RefundRequest) { r.Metadata = map[string]string{long: "v"} }})
	}
	if n := l.MetadataValueLen; n > 0 {
		cases = append(cases, over{"metadata value", "metadata.k", n, func(r *normalize.RefundRequest) {
			r.Metadata = map[string]string{"k": strings.Repeat("v", n+1)}
		}})
	}
	if n := l.DescriptionLen; n > 0 {
		cases = append(cases, over{"description", "description", n, func(r *normalize.RefundRequest) { r.Description = strings.Repeat("d", n+1) }})
	}
	if n := l.ReferenceLen; n > 0 {
		cases = append(cases, over{"reference", "reference", n, func(r *normalize.RefundRequest) { r.Reference = strings.Repeat("r", n+1) }})
	}
	if n := l.LineItems; n > 0 {
		cases = append(cases, over{"line items", "line_items", n, func(r *normalize.RefundRequest) {
			r.LineItems = make([]normalize.LineItem, n+1)
			for i := range r.LineItems {
				r.LineItems[i].ID = fmt.Sprint("li_", i)
			}
		}})
	}
	if p := l.ReservedKeyPrefix; p != "" {
		cases = append(cases, over{"reserved metadata key", "metadata." + p + "x", 0, func(r *normalize.RefundRequest) { r.Metadata = map[string]string{p + "x": "forged"} }})
	}
	if l.NoLineItems {
		cases = append(cases, over{"line items not carried", "line_items", 0, func(r *normalize.RefundRequest) {
			r.LineItems = []normalize.LineItem{{ID: "li_0"}}
		}})
	}
	if l.LineItemIDsOnly {
		cases = append(cases, over{"line item amount not carried", "line_items[0].amount", 0, func(r *normalize.RefundRequest) {
			r.LineItems = []normalize.LineItem{{ID: "li_0", Amount: &one}}
		}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := h.fullRequest(pay, 1000)
			c.edit(req)
			before := e.proxy.Requests()
			_, err := e.refund(context.Background(), req)
			wantLocal(t, e, before, err, normalize.CodeProviderLimitExceeded, c.field, fmt.Sprint("at most ", c.limit))
		})
	}
	if n, _ := e.total(t, pay); n != 0 {
		t.Fatalf("provider holds %d refunds after refusals, want 0", n)
	}
	// Everything at its limit at once is carried.
	req := h.fullRequest(pay, 1000)
	req.Metadata = map[string]string{}
	for i := range max(pairs, 1) {
		v := "v"
		if l.MetadataValueLen > 0 {
			v = strings.Repeat("v", l.MetadataValueLen)
		}
		req.Metadata[key(i, l.MetadataKeyLen)] = v
	}
	if n := l.DescriptionLen; n > 0 {
		req.Description = strings.Repeat("d", n)
	}
	if n := l.ReferenceLen; n > 0 {
		req.Reference = strings.Repeat("r", n)
	}
	if !l.NoLineItems {
		req.LineItems = []normalize.LineItem{{ID: "li_0"}}
	}
	got, err := e.refund(context.Background(), req)
	if err != nil {
		t.Fatalf("a refund at every declared limit: %v", err)
	}
	if got.Status == normalize.StatusFailed {
		t.Fatalf("a refund at every declared limit failed: %+v", got)
	}
	if n, sum := e.total(t, pay); n != 1 || sum != 1000 {
		t.Fatalf("provider holds %d refunds of %d, want 1 of 1000", n, sum)
	}
}

func testModeMismatch(t *testing.T, h *Harness) {
	if h.NewOtherModePayment == nil {
		t.Skip("the harness makes no payment of the other mode")
	}
	e := h.setup(t)
	pay := h.NewOtherModePayment(t, 1000)
	req := h.fullRequest(pay, 1000)
	req.Livemode = !e.p.Capabilities().Livemode
	before := e.proxy.Requests()
	_, err := e.refund(context.Background(), req)
	wantLocal(t, e, before, err, normalize.CodeModeMismatch, "payment_id", "")
	if n, _ := e.total(t, pay); n != 0 {
		t.Fatalf("provider holds %d refunds of the other mode's payment, want 0", n)
	}
}
