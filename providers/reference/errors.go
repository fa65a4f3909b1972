package reference

import (
	"encoding/json"
	"net/http"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/providers"
)

// codes maps the reference provider's error codes to the catalogue.
var codes = map[string]normalize.Code{
	"payment_not_found": normalize.CodePaymentNotFound,
	"already_refunded":  normalize.CodePaymentFullyRefunded,
	"amount_too_large":  normalize.CodeAmountExceedsRefundable,
	"invalid_request":   normalize.CodeValidationFailed,
	"unauthorized":      normalize.CodeProviderAuthFailed,
}

// classify turns a non-success answer into a *providers.Error.
func classify(resp *providers.Response, call providers.Call) error {
	var e apiError
	_ = json.Unmarshal(resp.Body, &e)
	code, outcome := codes[e.Error.Code], providers.OutcomeDeclined
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		code, outcome = normalize.CodeRateLimited, providers.OutcomeRetryLater
	case resp.StatusCode >= 500 || resp.StatusCode < 400:
		// A 5xx, or an answer we do not understand, may hide an applied refund.
		code, outcome = normalize.CodeProviderError, providers.OutcomeUnknown
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		code = normalize.CodeProviderAuthFailed
	case code == "":
		code = normalize.CodeProviderError
	}
	return resp.HTTPError(call, code, outcome, e.Error.Code, e.Error.Message)
}
