package normalize

import (
	"errors"
	"fmt"
	"strings"
)

// Code is an entry of the API's error catalogue. A code never changes meaning.
type Code string

// The error catalogue of API.md.
const (
	CodeMalformedJSON            Code = "malformed_json"
	CodeIdempotencyKeyRequired   Code = "idempotency_key_required"
	CodeUnauthenticated          Code = "unauthenticated"
	CodeNotFound                 Code = "not_found"
	CodePaymentNotFound          Code = "payment_not_found"
	CodeIdempotencyKeyInUse      Code = "idempotency_key_in_use"
	CodeInvalidState             Code = "invalid_state"
	CodeBodyTooLarge             Code = "body_too_large"
	CodeUnsupportedMediaType     Code = "unsupported_media_type"
	CodeValidationFailed         Code = "validation_failed"
	CodeIdempotencyKeyReused     Code = "idempotency_key_reused"
	CodeNoRoute                  Code = "no_route"
	CodeUnknownProvider          Code = "unknown_provider"
	CodePartialRefundUnsupported Code = "partial_refund_unsupported"
	CodeAmountExceedsRefundable  Code = "amount_exceeds_refundable"
	CodePaymentFullyRefunded     Code = "payment_fully_refunded"
	CodeCurrencyMismatch         Code = "currency_mismatch"
	CodeModeMismatch             Code = "mode_mismatch"
	CodeProviderLimitExceeded    Code = "provider_limit_exceeded"
	CodePolicyViolation          Code = "policy_violation"
	CodeRefundDeclined           Code = "refund_declined"
	CodeRateLimited              Code = "rate_limited"
	CodeProviderError            Code = "provider_error"
	CodeProviderAuthFailed       Code = "provider_auth_failed"
	CodeProviderUnavailable      Code = "provider_unavailable"
	CodeNotReady                 Code = "not_ready"
	// CodeInternal is for a fault of refundgate itself; it answers 500.
	CodeInternal Code = "internal_error"
)

// Codes lists the catalogue in a stable order.
var Codes = []Code{
	CodeMalformedJSON, CodeIdempotencyKeyRequired, CodeUnauthenticated, CodeNotFound,
	CodePaymentNotFound, CodeIdempotencyKeyInUse, CodeInvalidState, CodeBodyTooLarge,
	CodeUnsupportedMediaType, CodeValidationFailed, CodeIdempotencyKeyReused, CodeNoRoute,
	CodeUnknownProvider, CodePartialRefundUnsupported, CodeAmountExceedsRefundable,
	CodePaymentFullyRefunded, CodeCurrencyMismatch, CodeModeMismatch, CodeProviderLimitExceeded,
	CodePolicyViolation, CodeRefundDeclined, CodeRateLimited, CodeProviderError,
	CodeProviderAuthFailed, CodeProviderUnavailable, CodeNotReady, CodeInternal,
}

// FieldError names one field of a request and the rule it broke.
type FieldError struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error is refundgate's error: a catalogue Code, a message safe to show the
// caller, optional field details and provider details, and the cause (which
// is never shown, since it may carry provider text).
type Error struct {
	Code            Code
	Message         string
	Param           string
	Fields          []FieldError
	RefundID        string
	Provider        string
	ProviderCode    string
	ProviderMessage string
	// RetryAfterSeconds, when positive, is sent as Retry-After.
	RetryAfterSeconds int
	Cause             error
}

// Errorf returns an Error with code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an Error with code and message whose cause is err.
func Wrap(err error, code Code, message string) *Error {
	return &Error{Code: code, Message: message, Cause: err}
}

// FieldErr returns a validation error for one field.
func FieldErr(code Code, field, rule, message string) *Error {
	return &Error{Code: code, Message: message, Param: field,
		Fields: []FieldError{{Field: field, Code: rule, Message: message}}}
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Code))
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Cause != nil {
		b.WriteString(": ")
		b.WriteString(e.Cause.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// CodeOf returns the Code of the first *Error in err's chain, or CodeInternal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
