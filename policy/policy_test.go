package policy

import (
	"errors"
	"testing"
	"time"

	"github.com/refundgate/refundgate/normalize"
)

func TestDecide(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	old := now.Add(-200 * time.Hour)
	recent := now.Add(-time.Hour)
	p := Policy{MaxAmount: 500000, ApprovalAbove: 200000, RefundWindow: 180 * time.Hour}
	tests := []struct {
		name      string
		in        Input
		wantHold  bool
		wantField string
	}{
		{"small refund goes", Input{Amount: 100, Currency: "ZAR", CapturedAt: &recent, Now: now}, false, ""},
		{"at approval threshold goes", Input{Amount: 200000, Currency: "ZAR", Now: now}, false, ""},
		{"above threshold is held", Input{Amount: 200001, Currency: "ZAR", Now: now}, true, ""},
		{"above max is refused", Input{Amount: 500001, Currency: "ZAR", Now: now}, false, "amount"},
		{"outside window is refused", Input{Amount: 100, Currency: "ZAR", CapturedAt: &old, Now: now}, false, "payment_id"},
		{"unknown capture time passes the window", Input{Amount: 100, Currency: "ZAR", Now: now}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := p.Decide(tt.in)
			if tt.wantField != "" {
				var e *normalize.Error
				if !errors.As(err, &e) || e.Code != normalize.CodePolicyViolation || e.Param != tt.wantField {
					t.Fatalf("err = %v, want policy_violation on %s", err, tt.wantField)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if d.Hold != tt.wantHold {
				t.Errorf("Hold = %v, want %v", d.Hold, tt.wantHold)
			}
		})
	}
	if (Policy{}).Blocked(&old, now) != nil {
		t.Error("an empty policy blocks")
	}
	if got := p.Blocked(&old, now); len(got) != 1 {
		t.Errorf("Blocked = %v, want policy_violation", got)
	}
}
