package checkoutcom

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/providers"
)

// apiError is the v2 error body:
// {"errorCode","message","eventId","errors":[…],"errorMessageCodes":[…]}.
// errors may hold strings or objects; both are read.
type apiError struct {
	ErrorCode         flexString        `json:"errorCode"`
	Message           string            `json:"message"`
	EventID           string            `json:"eventId"`
	Errors            []json.RawMessage `json:"errors"`
	ErrorMessageCodes []flexString      `json:"errorMessageCodes"`
}

// known is what one provider error code means.
type known struct {
	code    normalize.Code
	message string
}

// codes maps the v2 errorCodes the adapter knows to the catalogue. The 83xxx
// codes are those the sandbox simulator documents where the provider docs
// are silent; 70000 is the documented validation error. An unknown code is
// classified by HTTP status.
var codes = map[string]known{
	"80001": {normalize.CodeProviderAuthFailed, "Checkout.com refused the secret key"},
	"83014": {normalize.CodePaymentNotFound, "Checkout.com has no such charge"},
	"83004": {normalize.CodePaymentFullyRefunded, "the charge is already fully refunded"},
	"83013": {normalize.CodeAmountExceedsRefundable, "the amount exceeds the charge's remaining captured value"},
	"83005": {normalize.CodeValidationFailed, "the charge cannot be refunded: send the capture's charge id, not the authorization's (or a refund's)"},
}

// fields maps the sandbox's validation message codes to request fields.
var fields = map[string]string{
	"70001": "amount", "70002": "refund_id", "70003": "metadata", "70004": "reference",
	"70005": "line_items", "70006": "body",
}

// classify turns a non-2xx answer into a *providers.Error. Table, in order:
//
//	429                          rate_limited           retry later
//	5xx, 1xx, 3xx                provider_error         unknown (may be applied)
//	401, 403, errorCode 80001    provider_auth_failed   declined
//	errorCode 83014, or 404      payment_not_found      declined
//	errorCode 83004              payment_fully_refunded declined
//	errorCode 83013              amount_exceeds_refundable declined
//	errorCode 83005              validation_failed (payment_id) declined
//	errorCode 70xxx, or 400      validation_failed, provider errors as details
//	any other 4xx                refund_declined (lookup: provider_error) declined
func classify(resp *providers.Response, call providers.Call) error {
	var e apiError
	_ = json.Unmarshal(resp.Body, &e)
	pcode := string(e.ErrorCode)
	var details []normalize.FieldError
	code, outcome := normalize.CodeRefundDeclined, providers.OutcomeDeclined
	if call.Op != "refund" {
		code = normalize.CodeProviderError
	}
	k, isKnown := codes[pcode]
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		code, outcome = normalize.CodeRateLimited, providers.OutcomeRetryLater
	case resp.StatusCode >= 500 || resp.StatusCode < 400:
		code, outcome = normalize.CodeProviderError, providers.OutcomeUnknown
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		code = normalize.CodeProviderAuthFailed
	case isKnown:
		code = k.code
		if pcode == "83005" {
			details = []normalize.FieldError{{Field: "payment_id", Code: pcode, Message: k.message}}
		}
	case strings.HasPrefix(pcode, "70") || resp.StatusCode == http.StatusBadRequest:
		code = normalize.CodeValidationFailed
		details = validationDetails(e, call.Secrets)
	case resp.StatusCode == http.StatusNotFound:
		code = normalize.CodePaymentNotFound
	}
	msg := e.Message
	if isKnown && msg == "" {
		msg = k.message
	}
	pe := resp.HTTPError(call, code, outcome, pcode, msg)
	if pe.RequestID == "" && e.EventID != "" {
		pe.RequestID = providers.Scrub(e.EventID, call.Secrets...)
	}
	pe.Details = details
	return pe
}

// validationDetails turns errors[] and errorMessageCodes[] into field
// details, pairing them by position.
func validationDetails(e apiError, secrets []string) []normalize.FieldError {
	var out []normalize.FieldError
	for i, raw := range e.Errors {
		var mc string
		if i < len(e.ErrorMessageCodes) {
			mc = string(e.ErrorMessageCodes[i])
		}
		msg := errorText(raw)
		field := fields[mc]
		if field == "" {
			field = "body"
		}
		out = append(out, normalize.FieldError{Field: field, Code: providers.Scrub(mc, secrets...), Message: providers.Scrub(msg, secrets...)})
	}
	return out
}

// errorText reads one entry of errors[]: a string, or an object with a
// message.
func errorText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &o) == nil && o.Message != "" {
		return o.Message
	}
	return providers.Excerpt(bytes.TrimSpace(raw))
}

// unreadable is the error for a 2xx answer the adapter cannot read: the
// refund may have been applied.
func unreadable(resp *providers.Response, call providers.Call, cause error) error {
	pe := resp.HTTPError(call, normalize.CodeProviderError, providers.OutcomeUnknown, "", "unreadable answer")
	if cause != nil {
		pe.Cause = scrubbedError{providers.Scrub(cause.Error(), call.Secrets...)}
	}
	return pe
}

type scrubbedError struct{ msg string }

func (e scrubbedError) Error() string { return e.msg }
