package smartpay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/refundgate/refundgate/normalize"
)

// reasons maps refundgate's reasons to the two Smartpay accepts
// (requested_by_customer and fraudulent). A duplicate charge and any other
// reason are, for Smartpay, refunds the merchant grants at the customer's
// request; the original reason travels in the refundgate_reason metadata
// key so it is never lost.
var reasons = map[normalize.Reason]string{
	normalize.ReasonRequestedByCustomer: "requested_by_customer",
	normalize.ReasonFraudulent:          "fraudulent",
	normalize.ReasonDuplicate:           "requested_by_customer",
	normalize.ReasonOther:               "requested_by_customer",
}

// wireRefundRequest is the body of POST /refunds.
type wireRefundRequest struct {
	Payment     string            `json:"payment"`
	Amount      json.Number       `json:"amount,omitempty"`
	Currency    string            `json:"currency"`
	Reason      string            `json:"reason"`
	Description string            `json:"description,omitempty"`
	Reference   string            `json:"reference,omitempty"`
	LineItems   []string          `json:"lineItems,omitempty"`
	Metadata    map[string]string `json:"metadata"`
}

// wireRefund is Smartpay's refund object. Amount is a JSON number in the
// currency's ordinary unit.
type wireRefund struct {
	ID          string            `json:"id"`
	Object      string            `json:"object"`
	Amount      json.Number       `json:"amount"`
	Currency    string            `json:"currency"`
	Payment     string            `json:"payment"`
	Reason      string            `json:"reason"`
	Reference   *string           `json:"reference"`
	Description *string           `json:"description"`
	Metadata    map[string]string `json:"metadata"`
	Status      string            `json:"status"`
	Test        *bool             `json:"test"`
	CreatedAt   *int64            `json:"createdAt"`
	UpdatedAt   *int64            `json:"updatedAt"`
}

// wireCollection is a list answer of GET /refunds.
type wireCollection struct {
	Object        string       `json:"object"`
	PageToken     string       `json:"pageToken"`
	NextPageToken string       `json:"nextPageToken"`
	MaxResults    int          `json:"maxResults"`
	Results       int          `json:"results"`
	Data          []wireRefund `json:"data"`
}

// wirePayment is Smartpay's payment object, read defensively: refunds may
// be refund objects or bare ids, and refundedAmount may be absent.
type wirePayment struct {
	ID             string            `json:"id"`
	Object         string            `json:"object"`
	Amount         json.Number       `json:"amount"`
	Currency       string            `json:"currency"`
	Status         string            `json:"status"`
	Refunds        []json.RawMessage `json:"refunds"`
	RefundedAmount *json.Number      `json:"refundedAmount"`
	Test           *bool             `json:"test"`
	CreatedAt      *int64            `json:"createdAt"`
}

// paymentInfo is a payment in minor units.
type paymentInfo struct {
	ID, Currency, Status string
	Amount, Refunded     int64
	// RefundedKnown says Refunded came from the provider (or from refund
	// objects embedded in the payment) rather than being unknown.
	RefundedKnown bool
	Live          bool
	CreatedAt     *time.Time
	Refunds       []wireRefund
}

// buildRefundRequest maps a refund request to Smartpay's body. currency is
// req.Currency or, when that was empty, the payment's.
func buildRefundRequest(req *normalize.RefundRequest, currency string) (*wireRefundRequest, error) {
	if _, ok := normalize.Exponent(currency); !ok {
		return nil, normalize.FieldErr(normalize.CodeValidationFailed, "currency", "invalid",
			fmt.Sprintf("currency %q is not an uppercase ISO 4217 code", currency))
	}
	reason := req.Reason
	if reason == "" {
		reason = normalize.ReasonRequestedByCustomer
	}
	wr, ok := reasons[reason]
	if !ok {
		return nil, normalize.FieldErr(normalize.CodeValidationFailed, "reason", "invalid",
			fmt.Sprintf("reason %q is not one of %v", reason, normalize.Reasons))
	}
	meta := make(map[string]string, len(req.Metadata)+2)
	for k, v := range req.Metadata {
		meta[k] = v
	}
	meta[metaRefundID] = req.RefundID
	meta[metaReason] = string(reason)
	body := &wireRefundRequest{
		Payment: req.PaymentID, Currency: currency, Reason: wr,
		Description: req.Description, Reference: req.Reference, Metadata: meta,
	}
	if req.Amount < 0 || req.Amount == 0 && !req.Full {
		return nil, normalize.FieldErr(normalize.CodeValidationFailed, "amount", "invalid",
			"amount must be at least 1 unless the whole payment is refunded")
	}
	if req.Amount > 0 {
		a, err := toWire(req.Amount, currency)
		if err != nil {
			return nil, normalize.FieldErr(normalize.CodeValidationFailed, "amount", "invalid", err.Error())
		}
		body.Amount = a
	}
	for _, li := range req.LineItems {
		body.LineItems = append(body.LineItems, li.ID)
	}
	return body, nil
}

// toWire writes amount, in the ISO minor unit of currency, as the decimal
// number of the currency's ordinary unit that Smartpay takes: 500 JPY is
// 500, 1234 USD is 12.34. No floating point is involved.
func toWire(amount int64, currency string) (json.Number, error) {
	exp, ok := normalize.Exponent(currency)
	if !ok {
		return "", fmt.Errorf("unknown currency %q", currency)
	}
	if amount < 0 {
		return "", fmt.Errorf("negative amount %d", amount)
	}
	s := strconv.FormatInt(amount, 10)
	if exp == 0 {
		return json.Number(s), nil
	}
	for len(s) <= exp {
		s = "0" + s
	}
	whole, frac := s[:len(s)-exp], strings.TrimRight(s[len(s)-exp:], "0")
	if frac == "" {
		return json.Number(whole), nil
	}
	return json.Number(whole + "." + frac), nil
}

// fromWire reads a Smartpay amount in the currency's ordinary unit into
// the ISO minor unit, exactly (math/big, no floats). An amount with more
// decimals than the currency has is an error.
func fromWire(n json.Number, currency string) (int64, error) {
	if n == "" {
		return 0, nil
	}
	exp, ok := normalize.Exponent(currency)
	if !ok {
		return 0, fmt.Errorf("unknown currency %q", currency)
	}
	r, ok := new(big.Rat).SetString(string(n))
	if !ok {
		return 0, fmt.Errorf("amount %q is not a number", string(n))
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(exp)), nil)))
	if !r.IsInt() || !r.Num().IsInt64() {
		return 0, fmt.Errorf("amount %s %s has more decimals than the currency or is too large", string(n), currency)
	}
	return r.Num().Int64(), nil
}

// msTime converts Smartpay's unix milliseconds.
func msTime(ms *int64) *time.Time {
	if ms == nil || *ms <= 0 {
		return nil
	}
	t := time.UnixMilli(*ms).UTC()
	return &t
}

// status maps a refund status: succeeded and failed are final, anything
// else is still pending.
func status(s string) normalize.Status {
	switch s {
	case "succeeded":
		return normalize.StatusSucceeded
	case "failed":
		return normalize.StatusFailed
	}
	return normalize.StatusPending
}

// normalize maps a refund object; currency is used when the object names
// none (the payment's currency).
func (w *wireRefund) normalize(currency string) (*normalize.ProviderRefund, error) {
	cur := w.currencyOr(currency)
	amount, err := fromWire(w.Amount, cur)
	if err != nil {
		return nil, err
	}
	r := &normalize.ProviderRefund{
		ProviderRefundID: w.ID, Status: status(w.Status), ProviderStatus: w.Status,
		Amount: amount, Currency: cur,
		Livemode: w.Test != nil && !*w.Test || w.Test == nil && strings.HasPrefix(w.ID, "refund_live_"),
	}
	if r.Status == normalize.StatusFailed {
		r.Failure = &normalize.Failure{Code: normalize.CodeRefundDeclined,
			Message: "Smartpay did not complete the refund", ProviderCode: w.Status}
	}
	return r, nil
}

// info maps a payment object.
func (w *wirePayment) info() (*paymentInfo, error) {
	p := &paymentInfo{ID: w.ID, Currency: w.Currency, Status: w.Status, CreatedAt: msTime(w.CreatedAt),
		Live: w.Test != nil && !*w.Test || w.Test == nil && strings.HasPrefix(w.ID, "payment_live_")}
	var err error
	if p.Amount, err = fromWire(w.Amount, w.Currency); err != nil {
		return nil, err
	}
	if w.RefundedAmount != nil {
		if p.Refunded, err = fromWire(*w.RefundedAmount, w.Currency); err != nil {
			return nil, err
		}
		p.RefundedKnown = true
	}
	objects := len(w.Refunds) > 0
	var sum int64
	for _, raw := range w.Refunds {
		if raw = bytes.TrimSpace(raw); len(raw) == 0 || raw[0] != '{' {
			objects = false // a bare id: the refunds must be listed
			continue
		}
		var r wireRefund
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, err
		}
		p.Refunds = append(p.Refunds, r)
		if r.Status == "succeeded" {
			a, err := fromWire(r.Amount, r.currencyOr(w.Currency))
			if err != nil {
				return nil, err
			}
			sum += a
		}
	}
	if !p.RefundedKnown && (objects || len(w.Refunds) == 0 && w.Refunds != nil) {
		p.Refunded, p.RefundedKnown = sum, true
	}
	return p, nil
}

func (w *wireRefund) currencyOr(c string) string {
	if w.Currency != "" {
		return w.Currency
	}
	return c
}
