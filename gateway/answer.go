package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/store"
)

// httpStatus is the one table from error code to HTTP status.
var httpStatus = map[normalize.Code]int{
	normalize.CodeMalformedJSON:            http.StatusBadRequest,
	normalize.CodeIdempotencyKeyRequired:   http.StatusBadRequest,
	normalize.CodeUnauthenticated:          http.StatusUnauthorized,
	normalize.CodeNotFound:                 http.StatusNotFound,
	normalize.CodePaymentNotFound:          http.StatusNotFound,
	normalize.CodeIdempotencyKeyInUse:      http.StatusConflict,
	normalize.CodeInvalidState:             http.StatusConflict,
	normalize.CodeBodyTooLarge:             http.StatusRequestEntityTooLarge,
	normalize.CodeUnsupportedMediaType:     http.StatusUnsupportedMediaType,
	normalize.CodeValidationFailed:         http.StatusUnprocessableEntity,
	normalize.CodeIdempotencyKeyReused:     http.StatusUnprocessableEntity,
	normalize.CodeNoRoute:                  http.StatusUnprocessableEntity,
	normalize.CodeUnknownProvider:          http.StatusUnprocessableEntity,
	normalize.CodePartialRefundUnsupported: http.StatusUnprocessableEntity,
	normalize.CodeAmountExceedsRefundable:  http.StatusUnprocessableEntity,
	normalize.CodePaymentFullyRefunded:     http.StatusUnprocessableEntity,
	normalize.CodeCurrencyMismatch:         http.StatusUnprocessableEntity,
	normalize.CodeModeMismatch:             http.StatusUnprocessableEntity,
	normalize.CodeProviderLimitExceeded:    http.StatusUnprocessableEntity,
	normalize.CodePolicyViolation:          http.StatusUnprocessableEntity,
	normalize.CodeRefundDeclined:           http.StatusUnprocessableEntity,
	normalize.CodeRateLimited:              http.StatusTooManyRequests,
	normalize.CodeProviderError:            http.StatusBadGateway,
	normalize.CodeProviderAuthFailed:       http.StatusBadGateway,
	normalize.CodeProviderUnavailable:      http.StatusServiceUnavailable,
	normalize.CodeNotReady:                 http.StatusServiceUnavailable,
	normalize.CodeInternal:                 http.StatusInternalServerError,
}

// HTTPStatus returns the HTTP status of an error code.
func HTTPStatus(code normalize.Code) int {
	if s, ok := httpStatus[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type            string                 `json:"type"`
	Title           string                 `json:"title"`
	Status          int                    `json:"status"`
	Detail          string                 `json:"detail"`
	Code            normalize.Code         `json:"code"`
	RequestID       string                 `json:"request_id"`
	Param           string                 `json:"param,omitempty"`
	Errors          []normalize.FieldError `json:"errors,omitempty"`
	RefundID        string                 `json:"refund_id,omitempty"`
	Provider        string                 `json:"provider,omitempty"`
	ProviderCode    string                 `json:"provider_code,omitempty"`
	ProviderMessage string                 `json:"provider_message,omitempty"`
}

// Answer is an HTTP answer of the API: status, body, and the content
// type and headers that go with it.
type Answer struct {
	Status      int
	Body        []byte
	ContentType string
	// RetryAfter, when positive, is sent as Retry-After seconds.
	RetryAfter int
	// Replayed marks an idempotent replay.
	Replayed bool
	// Refund is the refund the answer is about, when there is one.
	Refund *normalize.Refund
}

// ProblemOf renders err as a problem answer. A *normalize.Error keeps its
// code, message and details; anything else is an internal error whose text
// is not shown.
func ProblemOf(err error, requestID string) Answer {
	var e *normalize.Error
	if !errors.As(err, &e) {
		e = &normalize.Error{Code: normalize.CodeInternal, Message: "an internal error occurred; it has been logged"}
	}
	status := HTTPStatus(e.Code)
	p := Problem{
		Type:   "https://refundgate.dev/errors/" + strings.ReplaceAll(string(e.Code), "_", "-"),
		Title:  http.StatusText(status),
		Status: status, Detail: e.Message, Code: e.Code, RequestID: requestID,
		Param: e.Param, Errors: e.Fields, RefundID: e.RefundID, Provider: e.Provider,
		ProviderCode: e.ProviderCode, ProviderMessage: e.ProviderMessage,
	}
	b, _ := json.Marshal(p)
	return Answer{Status: status, Body: b, ContentType: "application/problem+json", RetryAfter: e.RetryAfterSeconds}
}

// RefundAnswer renders a refund with status.
func RefundAnswer(r *normalize.Refund, status int) Answer {
	return Answer{Status: status, Body: MarshalRefund(r), ContentType: "application/json", Refund: r}
}

// MarshalRefund renders the refund object of the API.
func MarshalRefund(r *normalize.Refund) []byte {
	c := *r
	c.Object = "refund"
	if c.Metadata == nil {
		c.Metadata = map[string]string{}
	}
	if c.LineItems == nil {
		c.LineItems = []normalize.LineItem{}
	}
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	b, _ := json.Marshal(&c)
	return b
}

func (a Answer) stored() *store.Answer {
	return &store.Answer{Status: a.Status, Body: a.Body}
}

func answerOf(s *store.Answer) Answer {
	ct := "application/json"
	if s.Status >= 400 {
		ct = "application/problem+json"
	}
	return Answer{Status: s.Status, Body: s.Body, ContentType: ct, Replayed: true}
}
