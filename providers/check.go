package providers

import (
	"fmt"
	"unicode/utf8"

	"github.com/refundgate/refundgate/normalize"
)

// CheckRequest refuses, before any HTTP request, what caps say the account
// cannot carry: a partial refund on a full-refund-only account, and any
// field over the provider's limits. adapter names the type in messages.
func CheckRequest(adapter string, caps Capabilities, req *normalize.RefundRequest) error {
	if !req.Full && !caps.Partial {
		return normalize.FieldErr(normalize.CodePartialRefundUnsupported, "amount", "partial_unsupported",
			fmt.Sprintf("%s refunds only the whole payment; omit amount or send the full refundable amount", adapter))
	}
	return CheckLimits(adapter, caps.Limits, req)
}

// CheckLimits refuses a field over the provider's limits with a 422
// provider_limit_exceeded naming the field and the limit.
func CheckLimits(adapter string, l Limits, req *normalize.RefundRequest) error {
	over := func(field, rule string, limit int) error {
		return normalize.FieldErr(normalize.CodeProviderLimitExceeded, field, rule,
			fmt.Sprintf("%s: %s allows at most %d for %s", field, adapter, limit, rule))
	}
	if l.MetadataPairs > 0 {
		if n := len(req.Metadata); n > l.MetadataPairs-l.ReservedMetadata {
			return over("metadata", "pairs", l.MetadataPairs-l.ReservedMetadata)
		}
	}
	for k, v := range req.Metadata {
		if l.MetadataKeyLen > 0 && utf8.RuneCountInString(k) > l.MetadataKeyLen {
			return over("metadata."+k, "key length", l.MetadataKeyLen)
		}
		if l.MetadataValueLen > 0 && utf8.RuneCountInString(v) > l.MetadataValueLen {
			return over("metadata."+k, "value length", l.MetadataValueLen)
		}
	}
	if l.DescriptionLen > 0 && utf8.RuneCountInString(req.Description) > l.DescriptionLen {
		return over("description", "length", l.DescriptionLen)
	}
	if l.ReferenceLen > 0 && utf8.RuneCountInString(req.Reference) > l.ReferenceLen {
		return over("reference", "length", l.ReferenceLen)
	}
	if l.LineItems > 0 && len(req.LineItems) > l.LineItems {
		return over("line_items", "items", l.LineItems)
	}
	return nil
}
