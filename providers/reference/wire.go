package reference

import (
	"time"

	"github.com/refundgate/refundgate/normalize"
)

type wireRefundRequest struct {
	Amount    *int64            `json:"amount,omitempty"`
	Reason    string            `json:"reason"`
	Reference string            `json:"reference,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

type wireRefund struct {
	ID        string            `json:"id"`
	PaymentID string            `json:"payment_id"`
	Amount    int64             `json:"amount"`
	Currency  string            `json:"currency"`
	Status    string            `json:"status"`
	Metadata  map[string]string `json:"metadata"`
}

type wirePayment struct {
	ID       string       `json:"id"`
	Amount   int64        `json:"amount"`
	Currency string       `json:"currency"`
	Refunded int64        `json:"refunded"`
	Created  time.Time    `json:"created"`
	Refunds  []wireRefund `json:"refunds"`
}

func (w *wireRefund) normalize() *normalize.ProviderRefund {
	st := normalize.StatusPending
	switch w.Status {
	case "succeeded":
		st = normalize.StatusSucceeded
	case "failed":
		st = normalize.StatusFailed
	}
	return &normalize.ProviderRefund{ProviderRefundID: w.ID, Status: st, ProviderStatus: w.Status, Amount: w.Amount, Currency: w.Currency}
}
