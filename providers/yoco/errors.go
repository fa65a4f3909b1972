package yoco

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/providers"
)

// apiError is an error body. Yoco documents none, so every shape seen in
// the wild is read: {"errorType","errorCode","errorMessage",
// "displayMessage"} (the sandbox's choice), {"code","message"},
// {"error":"…"} and {"error":{"code","message"}}, {"description"}.
type apiError struct {
	ErrorCode      string          `json:"errorCode"`
	ErrorType      string          `json:"errorType"`
	ErrorMessage   string          `json:"errorMessage"`
	DisplayMessage string          `json:"displayMessage"`
	Code           json.RawMessage `json:"code"`
	Message        string          `json:"message"`
	Description    string          `json:"description"`
	Error          json.RawMessage `json:"error"`
}

// parseError reads an error body defensively and returns the provider's
// code and message, either possibly empty.
func parseError(body []byte) (code, message string) {
	var e apiError
	if json.Unmarshal(body, &e) != nil {
		return "", ""
	}
	var nested struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	var errString string
	if json.Unmarshal(e.Error, &errString) != nil {
		_ = json.Unmarshal(e.Error, &nested)
	}
	var codeString string
	_ = json.Unmarshal(e.Code, &codeString)
	code = firstNonEmpty(e.ErrorCode, codeString, nested.Code, errString)
	message = firstNonEmpty(e.ErrorMessage, e.Message, nested.Message, e.DisplayMessage, e.Description)
	return code, message
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// codes maps Yoco's error codes (the sandbox's, where Yoco is silent) to
// the catalogue.
var codes = map[string]normalize.Code{
	"checkout_already_refunded":     normalize.CodePaymentFullyRefunded,
	"refund_amount_exceeds_balance": normalize.CodeAmountExceedsRefundable,
	"partial_refunds_not_enabled":   normalize.CodePartialRefundUnsupported,
	"checkout_not_found":            normalize.CodePaymentNotFound,
	"invalid_amount":                normalize.CodeValidationFailed,
	"invalid_request":               normalize.CodeValidationFailed,
	// Definite refusals of this checkout: not completed yet, or (as the
	// seed says) not created with live keys.
	"checkout_not_completed": normalize.CodeRefundDeclined,
	"live_checkout_required": normalize.CodeRefundDeclined,
}

// mismatchMessage explains a 422: it means refundgate sent two different
// payloads under one key, and the first may have been applied.
const mismatchMessage = "the idempotency key was reused with a different payload (a refundgate bug); " +
	"the first request with this key may have been applied: reconcile with Lookup"

// classify turns a non-success answer into a *providers.Error:
//
//	status                               code                        outcome
//	401, 403 (missing or wrong key)      provider_auth_failed        declined
//	404 (unknown checkout)               payment_not_found           declined
//	409 (same key in flight)             provider_unavailable        retry later
//	422 (same key, other payload)        internal_error              unknown: the first may have landed
//	429                                  rate_limited                retry later
//	400 checkout_already_refunded        payment_fully_refunded      declined (also while a refund settles)
//	400 refund_amount_exceeds_balance    amount_exceeds_refundable   declined
//	400 partial_refunds_not_enabled      partial_refund_unsupported  declined
//	400 invalid_amount, invalid_request  validation_failed           declined
//	400 checkout_not_completed,          refund_declined             declined
//	    live_checkout_required
//	other 4xx                            by code, else provider_error declined
//	5xx, 1xx, 3xx                        provider_error              unknown
func classify(resp *providers.Response, call providers.Call) error {
	pcode, pmsg := parseError(resp.Body)
	code, outcome := codes[strings.ToLower(pcode)], providers.OutcomeDeclined
	switch s := resp.StatusCode; {
	case s == http.StatusTooManyRequests:
		code, outcome = normalize.CodeRateLimited, providers.OutcomeRetryLater
	case s == http.StatusConflict:
		code, outcome = normalize.CodeProviderUnavailable, providers.OutcomeRetryLater
	case s >= 500 || s < 400:
		code, outcome = normalize.CodeProviderError, providers.OutcomeUnknown
	case s == http.StatusUnprocessableEntity:
		code, outcome = normalize.CodeInternal, providers.OutcomeUnknown
		if pmsg == "" {
			pmsg = mismatchMessage
		} else {
			pmsg = mismatchMessage + ": " + pmsg
		}
	case s == http.StatusUnauthorized, s == http.StatusForbidden:
		code = normalize.CodeProviderAuthFailed
	case s == http.StatusNotFound:
		code = normalize.CodePaymentNotFound
	case code == "" || code == normalize.CodePaymentNotFound:
		code = normalize.CodeProviderError
	}
	return resp.HTTPError(call, code, outcome, pcode, pmsg)
}
