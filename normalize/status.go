package normalize

// Status is the lifecycle state of a refund.
type Status string

// The refund states. requires_approval → pending → succeeded | failed, and
// requires_approval → canceled (or → failed when the provider refuses on
// approval). Terminal states never change again.
const (
	StatusRequiresApproval Status = "requires_approval"
	StatusPending          Status = "pending"
	StatusSucceeded        Status = "succeeded"
	StatusFailed           Status = "failed"
	StatusCanceled         Status = "canceled"
)

var transitions = map[Status][]Status{
	StatusRequiresApproval: {StatusPending, StatusCanceled, StatusSucceeded, StatusFailed},
	StatusPending:          {StatusSucceeded, StatusFailed},
}

// Valid reports whether s is one of the known states.
func (s Status) Valid() bool {
	switch s {
	case StatusRequiresApproval, StatusPending, StatusSucceeded, StatusFailed, StatusCanceled:
		return true
	}
	return false
}

// Terminal reports whether s can never change again.
func (s Status) Terminal() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusCanceled
}

// CanTransition reports whether a refund in state s may move to next.
// Staying in the same state is not a transition.
func (s Status) CanTransition(next Status) bool {
	for _, n := range transitions[s] {
		if n == next {
			return true
		}
	}
	return false
}

// Reason says why a refund is made.
type Reason string

// The reasons a merchant may give.
const (
	ReasonRequestedByCustomer Reason = "requested_by_customer"
	ReasonDuplicate           Reason = "duplicate"
	ReasonFraudulent          Reason = "fraudulent"
	ReasonOther               Reason = "other"
)

// Reasons lists every reason in a stable order.
var Reasons = []Reason{ReasonRequestedByCustomer, ReasonDuplicate, ReasonFraudulent, ReasonOther}

// Valid reports whether r is one of Reasons.
func (r Reason) Valid() bool {
	for _, x := range Reasons {
		if r == x {
			return true
		}
	}
	return false
}
