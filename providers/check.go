package providers

import (
	"fmt"
	"strings"
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

// CheckLimits refuses a field over the provider's limits, or one the
// provider cannot carry at all, with a 422 provider_limit_exceeded naming
// the field and the limit: nothing is ever silently cut.
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
		if l.ReservedKeyPrefix != "" && strings.HasPrefix(k, l.ReservedKeyPrefix) {
			return normalize.FieldErr(normalize.CodeProviderLimitExceeded, "metadata."+k, "reserved",
				fmt.Sprintf("metadata.%s: %s reserves metadata keys starting with %q for refundgate's reconciliation handles; at most 0 such keys", k, adapter, l.ReservedKeyPrefix))
		}
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
	if l.NoLineItems && len(req.LineItems) > 0 {
		return normalize.FieldErr(normalize.CodeProviderLimitExceeded, "line_items", "unsupported",
			fmt.Sprintf("line_items: %s has no line items field; it allows at most 0 for items", adapter))
	}
	if l.LineItems > 0 && len(req.LineItems) > l.LineItems {
		return over("line_items", "items", l.LineItems)
	}
	if l.LineItemIDsOnly {
		for i, li := range req.LineItems {
			sub := ""
			switch {
			case li.Amount != nil:
				sub = "amount"
			case li.Quantity != nil:
				sub = "quantity"
			default:
				continue
			}
			field := fmt.Sprintf("line_items[%d].%s", i, sub)
			return normalize.FieldErr(normalize.CodeProviderLimitExceeded, field, "ids_only",
				fmt.Sprintf("%s: %s carries line item ids only; it allows at most 0 for line item %ss", field, adapter, sub))
		}
	}
	return nil
}
