package yoco

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/refundgate/refundgate/normalize"
)

// wireRefundRequest is the body of POST /checkouts/{id}/refund. Amount
// (integer cents) is sent only by partial-refund accounts.
type wireRefundRequest struct {
	Amount   *int64            `json:"amount,omitempty"`
	Metadata map[string]string `json:"metadata"`
}

// wireRefundResponse is the 202 answer:
// {"id":"ch_…","refundId":"rfd_…","message":"…","status":"successful"}.
type wireRefundResponse struct {
	ID       string `json:"id"`
	RefundID string `json:"refundId"`
	Message  string `json:"message"`
	Status   string `json:"status"`
}

// The checkout statuses Yoco documents.
const (
	checkoutCompleted = "completed"
	checkoutRefunded  = "refunded"
	checkoutReversed  = "reversed"
)

// wireCheckout is the checkout of GET /checkouts/{id}. RefundedAmount,
// Refunds and CreatedDate are not in Yoco's documents (the sandbox adds the
// first two); they are read when present and never required.
type wireCheckout struct {
	ID             string          `json:"id"`
	Status         string          `json:"status"`
	Amount         int64           `json:"amount"`
	Currency       string          `json:"currency"`
	PaymentID      string          `json:"paymentId"`
	ProcessingMode string          `json:"processingMode"`
	CreatedDate    string          `json:"createdDate"`
	RefundedAmount *int64          `json:"refundedAmount"`
	Refunds        *[]wireRefund   `json:"refunds"`
	Metadata       json.RawMessage `json:"metadata"`
}

// wireRefund is one refund of a checkout's refunds list (extension).
// Metadata values may be of any JSON type; only strings are used.
type wireRefund struct {
	ID          string         `json:"id"`
	Amount      int64          `json:"amount"`
	Currency    string         `json:"currency"`
	Status      string         `json:"status"`
	CreatedDate string         `json:"createdDate"`
	Metadata    map[string]any `json:"metadata"`
}

// buildRefundRequest maps a checked refund request to Yoco's body: the
// merchant's metadata plus the gateway's refund id, reference, reason and
// description; the amount only when the account takes partial refunds and
// the amount is known.
func buildRefundRequest(req *normalize.RefundRequest, partial bool) *wireRefundRequest {
	meta := make(map[string]string, len(req.Metadata)+reservedMetadata)
	for k, v := range req.Metadata {
		meta[k] = v
	}
	meta[metaRefundID] = req.RefundID
	if req.Reference != "" {
		meta[metaReference] = req.Reference
	}
	if req.Reason != "" {
		meta[metaReason] = string(req.Reason)
	}
	if req.Description != "" {
		meta[metaDescription] = req.Description
	}
	body := &wireRefundRequest{Metadata: meta}
	if partial && req.Amount > 0 {
		a := req.Amount
		body.Amount = &a
	}
	return body
}

// normalize maps the 202 answer. "successful" means accepted for
// processing, so the refund is pending whatever the status says.
func (w *wireRefundResponse) normalize(req *normalize.RefundRequest) *normalize.ProviderRefund {
	return &normalize.ProviderRefund{
		ProviderRefundID: w.RefundID, Status: normalize.StatusPending, ProviderStatus: w.Status,
		Amount: req.Amount, Currency: req.Currency,
	}
}

// refundStatus maps a refund's own status (pending, succeeded, failed).
func refundStatus(s string) normalize.Status {
	switch strings.ToLower(s) {
	case "succeeded", "successful", "refunded", "reversed":
		return normalize.StatusSucceeded
	case "failed":
		return normalize.StatusFailed
	}
	return normalize.StatusPending
}

// failure is the Failure of a refund Yoco says failed.
func failure(providerCode, providerMessage string) *normalize.Failure {
	return &normalize.Failure{Code: normalize.CodeRefundDeclined, Message: "yoco did not complete the refund",
		ProviderCode: providerCode, ProviderMessage: providerMessage}
}

func (w *wireRefund) metaString(k string) string {
	s, _ := w.Metadata[k].(string)
	return s
}

func (w *wireCheckout) finallyRefunded() bool {
	return w.Status == checkoutRefunded || w.Status == checkoutReversed
}

// state maps the checkout to a ProviderState and finds ref's refund.
// keyLive is the key's mode, used when the checkout does not say its own.
func (w *wireCheckout) state(ref normalize.LookupRef, keyLive bool) *normalize.ProviderState {
	st := &normalize.ProviderState{
		PaymentID: w.ID, Currency: w.Currency, CapturedAmount: w.Amount, PaymentStatus: w.Status,
		Livemode: keyLive, CapturedAt: parseTime(w.CreatedDate),
	}
	if st.PaymentID == "" {
		st.PaymentID = ref.PaymentID
	}
	switch w.ProcessingMode {
	case "live":
		st.Livemode = true
	case "test":
		st.Livemode = false
	}
	switch {
	case w.RefundedAmount != nil:
		st.RefundedAmount = *w.RefundedAmount
	case w.Refunds != nil:
		for _, r := range *w.Refunds {
			if refundStatus(r.Status) == normalize.StatusSucceeded {
				st.RefundedAmount += r.Amount
			}
		}
	}
	if w.finallyRefunded() {
		st.RefundedAmount = max(st.RefundedAmount, w.Amount)
	}
	st.Refund = w.find(ref)
	if st.Refund != nil {
		st.Refund.Livemode = st.Livemode
		if st.Refund.Currency == "" {
			st.Refund.Currency = w.Currency
		}
	}
	return st
}

// find returns ref's refund. A refunds list, when the checkout carries one,
// is the whole truth: the refund is there (pending, succeeded or failed) or
// it was never applied. Without one, the documented status decides.
func (w *wireCheckout) find(ref normalize.LookupRef) *normalize.ProviderRefund {
	if ref.ProviderRefundID == "" && ref.RefundID == "" {
		return nil
	}
	if w.Refunds != nil {
		for i := range *w.Refunds {
			r := &(*w.Refunds)[i]
			if (ref.ProviderRefundID != "" && r.ID == ref.ProviderRefundID) ||
				(ref.RefundID != "" && r.metaString(metaRefundID) == ref.RefundID) {
				return w.fromList(r)
			}
		}
		return nil
	}
	amount := ref.Amount
	switch {
	case w.finallyRefunded():
		if amount == 0 {
			amount = w.Amount
		}
		return &normalize.ProviderRefund{ProviderRefundID: ref.ProviderRefundID, Status: normalize.StatusSucceeded,
			ProviderStatus: w.Status, Amount: amount, Currency: w.Currency}
	case w.Status == checkoutCompleted && ref.ProviderRefundID != "":
		// Yoco gave this refund id in a 202, so it accepted the refund;
		// the checkout only changes status once the refund settles.
		return &normalize.ProviderRefund{ProviderRefundID: ref.ProviderRefundID, Status: normalize.StatusPending,
			ProviderStatus: w.Status, Amount: amount, Currency: w.Currency}
	}
	return nil
}

// fromList maps a refund of the checkout's refunds list. A succeeded
// refund of a refunded or reversed checkout keeps the checkout's status as
// provider status, the documented word for a settled refund.
func (w *wireCheckout) fromList(r *wireRefund) *normalize.ProviderRefund {
	pr := &normalize.ProviderRefund{ProviderRefundID: r.ID, Status: refundStatus(r.Status), ProviderStatus: r.Status,
		Amount: r.Amount, Currency: r.Currency}
	switch {
	case pr.Status == normalize.StatusSucceeded && w.finallyRefunded():
		pr.ProviderStatus = w.Status
	case pr.Status == normalize.StatusFailed:
		pr.Failure = failure(r.Status, "")
	}
	return pr
}

// parseTime reads an RFC 3339 time; anything else is nil.
func parseTime(s string) *time.Time {
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil
	}
	t = t.UTC()
	return &t
}
