package smartpay

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/providers"
)

// apiError is Smartpay's error body,
// {"statusCode","errorCode","message","details":[…]}. details are strings
// naming the offending field first, or objects; both are read.
type apiError struct {
	StatusCode int               `json:"statusCode"`
	ErrorCode  string            `json:"errorCode"`
	Message    string            `json:"message"`
	Details    []json.RawMessage `json:"details"`
}

// codes maps Smartpay's error codes to the catalogue.
var codes = map[string]normalize.Code{
	"payment.not-found":   normalize.CodePaymentNotFound,
	"refund.not-found":    normalize.CodeNotFound,
	"amount.insufficient": normalize.CodeAmountExceedsRefundable,
	"request.invalid":     normalize.CodeValidationFailed,
	"unauthorized":        normalize.CodeProviderAuthFailed,
}

// fields maps Smartpay's request field names to refundgate's.
var fields = map[string]string{
	"payment": "payment_id", "amount": "amount", "currency": "currency", "reason": "reason",
	"description": "description", "reference": "reference", "lineItems": "line_items",
	"metadata": "metadata", "maxResults": "maxResults", "pageToken": "pageToken",
}

// parseError reads an error body defensively: anything unreadable gives
// an empty apiError.
func parseError(body []byte) apiError {
	var e apiError
	if json.Unmarshal(body, &e) != nil {
		return apiError{}
	}
	return e
}

// classify turns a non-success answer into a *providers.Error:
//
//	status                       code                        outcome
//	401                          provider_auth_failed        declined
//	403 amount.insufficient      amount_exceeds_refundable   declined
//	403 other                    provider_auth_failed        declined
//	404 payment.not-found        payment_not_found           declined
//	404 refund.not-found         not_found                   declined
//	400 request.invalid          validation_failed + details declined
//	409 (key in flight)          provider_unavailable        retry later
//	422 idempotency-key.mismatch provider_error              unknown: an earlier attempt may have landed
//	429                          rate_limited                retry later
//	5xx, 1xx–3xx                 provider_error              unknown
//	other 4xx                    by errorCode, else provider_error, declined
func classify(resp *providers.Response, call providers.Call) error {
	e := parseError(resp.Body)
	code, outcome := codes[e.ErrorCode], providers.OutcomeDeclined
	switch s := resp.StatusCode; {
	case s == http.StatusTooManyRequests:
		code, outcome = normalize.CodeRateLimited, providers.OutcomeRetryLater
	case s == http.StatusConflict:
		code, outcome = normalize.CodeProviderUnavailable, providers.OutcomeRetryLater
	case s >= 500 || s < 400:
		code, outcome = normalize.CodeProviderError, providers.OutcomeUnknown
	case s == http.StatusUnprocessableEntity && strings.HasPrefix(e.ErrorCode, "idempotency"):
		code, outcome = normalize.CodeProviderError, providers.OutcomeUnknown
	case s == http.StatusUnauthorized:
		code = normalize.CodeProviderAuthFailed
	case s == http.StatusForbidden && code != normalize.CodeAmountExceedsRefundable:
		code = normalize.CodeProviderAuthFailed
	case s == http.StatusNotFound && code != normalize.CodePaymentNotFound && code != normalize.CodeNotFound:
		code = normalize.CodeProviderError
	case s == http.StatusBadRequest && code == "":
		code = normalize.CodeValidationFailed
	case code == "" || code == normalize.CodeProviderAuthFailed:
		code = normalize.CodeProviderError
	}
	pe := resp.HTTPError(call, code, outcome, e.ErrorCode, e.Message)
	if code == normalize.CodeValidationFailed {
		pe.Details = details(e.Details, call.Secrets)
	}
	return pe
}

// details turns Smartpay's details into field errors. A string detail
// names its field first ("currency is required"); an object detail may
// carry field and message.
func details(raw []json.RawMessage, secrets []string) []normalize.FieldError {
	var out []normalize.FieldError
	for _, d := range raw {
		var msg, field string
		d = bytes.TrimSpace(d)
		switch {
		case len(d) > 0 && d[0] == '"':
			_ = json.Unmarshal(d, &msg)
		case len(d) > 0 && d[0] == '{':
			var o struct {
				Field, Path, Param, Message string
			}
			_ = json.Unmarshal(d, &o)
			msg, field = o.Message, firstNonEmpty(o.Field, o.Path, o.Param)
		default:
			msg = string(d)
		}
		if field == "" {
			field, _, _ = strings.Cut(strings.TrimSpace(msg), " ")
		}
		head, rest, _ := strings.Cut(field, ".")
		if f, ok := fields[head]; ok && rest == "" {
			field = f
		} else if ok {
			field = f + "." + rest
		} else {
			field = "request"
		}
		out = append(out, normalize.FieldError{Field: providers.Scrub(field, secrets...), Code: "invalid",
			Message: providers.Scrub(providers.Excerpt([]byte(msg)), secrets...)})
	}
	return out
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
