package providers

import (
	"errors"
	"strings"
	"testing"

	"github.com/refundgate/refundgate/normalize"
)

func TestRegistry(t *testing.T) {
	f := func(Config) (Provider, error) { return nil, nil }
	mustPanic := func(name string, fn func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s did not panic", name)
			}
		}()
		fn()
	}
	Register("registry-test", f)
	mustPanic("duplicate", func() { Register("registry-test", f) })
	mustPanic("empty name", func() { Register("", f) })
	mustPanic("nil factory", func() { Register("registry-nil", nil) })
	if !Known("registry-test") || Known("registry-nope") {
		t.Error("Known is wrong")
	}
	_, err := Open(Config{Type: "registry-nope"})
	if err == nil || !strings.Contains(err.Error(), "forgotten import?") {
		t.Errorf("Open of an unknown type: %v", err)
	}
}

func TestCheckLimitsNamesFieldAndLimit(t *testing.T) {
	l := Limits{MetadataPairs: 10, ReservedMetadata: 1, MetadataValueLen: 100, DescriptionLen: 5}
	meta := map[string]string{}
	for i := 0; i < 10; i++ {
		meta[string(rune('a'+i))] = "v"
	}
	tests := []struct {
		req   normalize.RefundRequest
		field string
		limit string
	}{
		{normalize.RefundRequest{Metadata: meta, Full: true}, "metadata", "at most 9"},
		{normalize.RefundRequest{Metadata: map[string]string{"k": strings.Repeat("v", 101)}, Full: true}, "metadata.k", "at most 100"},
		{normalize.RefundRequest{Description: "toolong", Full: true}, "description", "at most 5"},
	}
	for _, tt := range tests {
		err := CheckRequest("checkoutcom", Capabilities{Partial: true, Limits: l}, &tt.req)
		var ne *normalize.Error
		if !errors.As(err, &ne) || ne.Code != normalize.CodeProviderLimitExceeded || ne.Param != tt.field || !strings.Contains(ne.Message, tt.limit) {
			t.Errorf("%+v: %v, want provider_limit_exceeded on %s naming %q", tt.req, err, tt.field, tt.limit)
		}
	}
	partial := normalize.RefundRequest{Amount: 5}
	if err := CheckRequest("yoco", Capabilities{}, &partial); normalize.CodeOf(err) != normalize.CodePartialRefundUnsupported {
		t.Errorf("partial on a full-only account: %v", err)
	}
}

// TestCheckLimitsWhatCannotBeCarried: a field the provider cannot carry at
// all (a reserved metadata key, line items, line item amounts) is refused,
// never silently dropped or overwritten.
func TestCheckLimitsWhatCannotBeCarried(t *testing.T) {
	one := int64(1)
	tests := []struct {
		name  string
		l     Limits
		req   normalize.RefundRequest
		field string
		limit string
	}{
		{"reserved key", Limits{ReservedKeyPrefix: "refundgate_"},
			normalize.RefundRequest{Metadata: map[string]string{"refundgate_refund_id": "forged"}}, "metadata.refundgate_refund_id", "at most 0"},
		{"no line items", Limits{NoLineItems: true},
			normalize.RefundRequest{LineItems: []normalize.LineItem{{ID: "li_1"}}}, "line_items", "at most 0"},
		{"ids only: amount", Limits{LineItemIDsOnly: true},
			normalize.RefundRequest{LineItems: []normalize.LineItem{{ID: "li_1"}, {ID: "li_2", Amount: &one}}}, "line_items[1].amount", "at most 0"},
		{"ids only: quantity", Limits{LineItemIDsOnly: true},
			normalize.RefundRequest{LineItems: []normalize.LineItem{{ID: "li_1", Quantity: &one}}}, "line_items[0].quantity", "at most 0"},
	}
	for _, tt := range tests {
		tt.req.Full = true
		err := CheckRequest("yoco", Capabilities{Limits: tt.l}, &tt.req)
		var ne *normalize.Error
		if !errors.As(err, &ne) || ne.Code != normalize.CodeProviderLimitExceeded || ne.Param != tt.field || !strings.Contains(ne.Message, tt.limit) {
			t.Errorf("%s: %v, want provider_limit_exceeded on %s naming %q", tt.name, err, tt.field, tt.limit)
		}
	}
	for _, tt := range []struct {
		name string
		l    Limits
		req  normalize.RefundRequest
	}{
		{"other keys pass", Limits{ReservedKeyPrefix: "refundgate_"}, normalize.RefundRequest{Metadata: map[string]string{"order": "1", "refundgate": "x"}}},
		{"no line items, none sent", Limits{NoLineItems: true}, normalize.RefundRequest{}},
		{"ids only, ids sent", Limits{LineItemIDsOnly: true}, normalize.RefundRequest{LineItems: []normalize.LineItem{{ID: "li_1"}}}},
	} {
		tt.req.Full = true
		if err := CheckRequest("yoco", Capabilities{Limits: tt.l}, &tt.req); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}
