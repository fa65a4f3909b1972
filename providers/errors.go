package providers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/refundgate/refundgate/normalize"
)

// Outcome says what a failed provider call did to the money.
type Outcome int

const (
	// OutcomeDeclined: the provider answered and applied nothing.
	OutcomeDeclined Outcome = iota
	// OutcomeNotSent: the request provably never reached the provider.
	OutcomeNotSent
	// OutcomeUnknown: the request may have been applied (timeout, 5xx,
	// dropped connection, unreadable answer).
	OutcomeUnknown
	// OutcomeRetryLater: the provider applied nothing and asks to retry
	// later (429, or a request with the same key still in flight).
	OutcomeRetryLater
)

func (o Outcome) String() string {
	switch o {
	case OutcomeDeclined:
		return "declined"
	case OutcomeNotSent:
		return "not_sent"
	case OutcomeUnknown:
		return "unknown"
	case OutcomeRetryLater:
		return "retry_later"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Error is a failed provider call. It keeps the HTTP status, the
// provider's code, message and request id, and a scrubbed excerpt of the
// body; it never holds a secret.
type Error struct {
	Provider        string
	Op              string
	StatusCode      int
	Code            normalize.Code
	ProviderCode    string
	ProviderMessage string
	RequestID       string
	Body            string
	Outcome         Outcome
	RetryAfter      time.Duration
	// Details are field-level details the provider gave, if any.
	Details []normalize.FieldError
	Cause   error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s %s", e.Provider, e.Op)
	if e.StatusCode != 0 {
		msg += fmt.Sprintf(": HTTP %d", e.StatusCode)
	}
	if e.ProviderCode != "" {
		msg += " " + e.ProviderCode
	}
	if e.ProviderMessage != "" {
		msg += ": " + e.ProviderMessage
	}
	if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	return msg + " (" + e.Outcome.String() + ")"
}

// Unwrap returns the transport cause, if any.
func (e *Error) Unwrap() error { return e.Cause }

// OutcomeOf says what err did to the money. An error that is not a
// provider Error is treated as unknown unless it is a normalize.Error raised
// before any request (a local refusal), which is not sent.
func OutcomeOf(err error) Outcome {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Outcome
	}
	var ne *normalize.Error
	if errors.As(err, &ne) {
		return OutcomeNotSent
	}
	if errors.Is(err, context.Canceled) {
		return OutcomeUnknown
	}
	return OutcomeUnknown
}

// Infrastructure reports whether err is a failure of the provider's
// infrastructure (transport, timeout, 5xx, 429) that a circuit breaker
// should count. Declines and other 4xx are the provider working normally.
func Infrastructure(err error) bool {
	if err == nil {
		return false
	}
	var pe *Error
	if errors.As(err, &pe) {
		return pe.StatusCode == 0 || pe.StatusCode >= 500 || pe.StatusCode == 429
	}
	var ne *normalize.Error
	if errors.As(err, &ne) {
		return false
	}
	return !errors.Is(err, context.Canceled)
}

// DefaultErrorCode classifies an error the way most adapters want: a
// provider Error by its Code, a normalize.Error by its own Code, anything
// else as provider_error.
func DefaultErrorCode(err error) normalize.Code {
	var pe *Error
	if errors.As(err, &pe) && pe.Code != "" {
		return pe.Code
	}
	var ne *normalize.Error
	if errors.As(err, &ne) {
		return ne.Code
	}
	return normalize.CodeProviderError
}
