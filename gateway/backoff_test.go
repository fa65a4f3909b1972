package gateway

import (
	"testing"
	"time"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/providers"
)

// TestReconcileBackoff: the reconciler looks again after seconds, then
// minutes, then hours, never sooner than the account's timeout.
func TestReconcileBackoff(t *testing.T) {
	acct := &Account{Timeout: time.Second}
	var got []time.Duration
	for n := 1; n <= 12; n++ {
		got = append(got, backoff(n, acct))
	}
	if got[0] != 2*time.Second || got[4] != 5*time.Minute || got[8] != 4*time.Hour || got[11] != 4*time.Hour {
		t.Errorf("backoff = %v", got)
	}
	for i := 1; i < len(got); i++ {
		if got[i] < got[i-1] {
			t.Errorf("backoff shrinks at %d: %v", i, got)
		}
	}
	if d := backoff(1, &Account{Timeout: 10 * time.Second}); d != 10*time.Second {
		t.Errorf("first look for a 10s account = %v, want its timeout", d)
	}
}

// TestShouldRetry: resend only what provably never left, what the
// provider asked to retry, or what the provider deduplicates.
func TestShouldRetry(t *testing.T) {
	idem := providers.Capabilities{Idempotent: true}
	none := providers.Capabilities{}
	unknown := &providers.Error{Outcome: providers.OutcomeUnknown, StatusCode: 500}
	tests := []struct {
		name string
		err  error
		caps providers.Capabilities
		n    int
		want bool
	}{
		{"never left", &providers.Error{Outcome: providers.OutcomeNotSent}, none, 1, true},
		{"429", &providers.Error{Outcome: providers.OutcomeRetryLater, StatusCode: 429}, none, 1, true},
		{"unknown, idempotent provider", unknown, idem, 1, true},
		{"unknown, no idempotency", unknown, none, 1, false},
		{"declined", &providers.Error{Outcome: providers.OutcomeDeclined, StatusCode: 404}, idem, 1, false},
		{"local refusal", normalize.Errorf(normalize.CodeProviderLimitExceeded, "x"), idem, 1, false},
		{"attempts exhausted", unknown, idem, maxAttempts, false},
	}
	for _, tt := range tests {
		got, why := shouldRetry(tt.err, tt.caps, tt.n)
		if got != tt.want || why == "" {
			t.Errorf("%s: shouldRetry = %v (%q), want %v", tt.name, got, why, tt.want)
		}
	}
}
