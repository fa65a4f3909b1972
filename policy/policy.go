// Package policy makes the merchant's refund policy decisions. It is pure:
// no I/O, no clock of its own.
package policy

import (
	"fmt"
	"time"

	"github.com/refundgate/refundgate/normalize"
)

// Policy is one merchant's refund policy; zero fields impose nothing.
type Policy struct {
	// MaxAmount is the largest single refund, in minor units.
	MaxAmount int64
	// ApprovalAbove holds refunds above this amount for approval.
	ApprovalAbove int64
	// RefundWindow is how long after the payment a refund may be made.
	RefundWindow time.Duration
}

// Input is one refund as policy sees it.
type Input struct {
	Amount     int64
	Currency   string
	CapturedAt *time.Time
	Now        time.Time
}

// Decision is what policy allows.
type Decision struct {
	// Hold: store the refund as requires_approval and send nothing.
	Hold bool
}

// Decide returns the decision for in, or a policy_violation error naming
// the field and the rule.
func (p Policy) Decide(in Input) (Decision, error) {
	if p.MaxAmount > 0 && in.Amount > p.MaxAmount {
		return Decision{}, normalize.FieldErr(normalize.CodePolicyViolation, "amount", "max_amount",
			fmt.Sprintf("amount %s is above the merchant's maximum refund of %s",
				normalize.Money{Amount: in.Amount, Currency: in.Currency}, normalize.Money{Amount: p.MaxAmount, Currency: in.Currency}))
	}
	if p.RefundWindow > 0 && in.CapturedAt != nil && in.Now.Sub(*in.CapturedAt) > p.RefundWindow {
		return Decision{}, normalize.FieldErr(normalize.CodePolicyViolation, "payment_id", "refund_window",
			fmt.Sprintf("the payment was made %s, outside the merchant's refund window of %s",
				in.CapturedAt.UTC().Format(time.RFC3339), p.RefundWindow))
	}
	return Decision{Hold: p.ApprovalAbove > 0 && in.Amount > p.ApprovalAbove}, nil
}

// Blocked lists the policy codes that would refuse any refund of the
// payment now (for the dry-run endpoint).
func (p Policy) Blocked(capturedAt *time.Time, now time.Time) []normalize.Code {
	if p.RefundWindow > 0 && capturedAt != nil && now.Sub(*capturedAt) > p.RefundWindow {
		return []normalize.Code{normalize.CodePolicyViolation}
	}
	return nil
}
