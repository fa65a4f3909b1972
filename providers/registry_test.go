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
