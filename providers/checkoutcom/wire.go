package checkoutcom

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/refundgate/refundgate/normalize"
)

// wireRefundRequest is the body of POST /charges/{chargeId}/refund.
type wireRefundRequest struct {
	Value       *int64            `json:"value,omitempty"`
	TrackID     string            `json:"trackId"`
	Description string            `json:"description,omitempty"`
	Products    []wireProduct     `json:"products,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	Udf1        string            `json:"udf1,omitempty"`
	Udf2        string            `json:"udf2,omitempty"`
}

// wireProduct is one line of products[].
type wireProduct struct {
	SKU      string `json:"sku"`
	Price    *int64 `json:"price,omitempty"`
	Quantity *int64 `json:"quantity,omitempty"`
}

// wireCharge is a v2 charge object (a refund, a capture or an
// authorization). Only the fields the adapter reads are decoded, each
// tolerantly: products, metadata and udf fields are left out so that an
// unexpected shape there never makes an answer unreadable.
type wireCharge struct {
	ID              string     `json:"id"`
	OriginalID      string     `json:"originalId"`
	LiveMode        bool       `json:"liveMode"`
	Created         string     `json:"created"`
	Value           flexInt    `json:"value"`
	Currency        string     `json:"currency"`
	TrackID         string     `json:"trackId"`
	ResponseMessage string     `json:"responseMessage"`
	ResponseCode    flexString `json:"responseCode"`
	Status          string     `json:"status"`
}

// wireHistory is the body of GET /charges/{chargeId}/history.
type wireHistory struct {
	Charges []wireCharge `json:"charges"`
}

// flexInt is an integer sent as a JSON number or a numeric string (the
// seed's request example sends "value": "2000").
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		*f = 0
		return nil
	}
	s := string(b)
	if b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return fmt.Errorf("value %q is not an integer", s)
	}
	*f = flexInt(n)
	return nil
}

// flexString is a string that may arrive as a JSON number ("10000" or
// 10000).
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		*f = ""
		return nil
	}
	if b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*f = flexString(n.String())
	return nil
}

// ckoExponents are the currencies whose Checkout.com value unit differs
// from the ISO 4217 minor unit ("Calculating the value": CLF is a full
// value; CLP, UYI and UYW are divided by 100 like every currency not listed).
var ckoExponents = map[string]int{"CLF": 0, "CLP": 2, "UYI": 2, "UYW": 2}

// exponents returns the ISO and Checkout.com exponents of currency. An
// unknown or empty currency has both equal: the amount goes through as is.
func exponents(currency string) (iso, cko int) {
	iso, ok := normalize.Exponent(currency)
	if !ok {
		return 0, 0
	}
	if e, ok := ckoExponents[currency]; ok {
		return iso, e
	}
	return iso, iso
}

// toValue converts an ISO minor-unit amount to Checkout.com's value.
func toValue(amount int64, currency string) (int64, error) {
	iso, cko := exponents(currency)
	return normalize.ConvertExponent(amount, iso, cko)
}

// fromValue converts a Checkout.com value to ISO minor units.
func fromValue(value int64, currency string) (int64, error) {
	iso, cko := exponents(currency)
	return normalize.ConvertExponent(value, cko, iso)
}

// threeDecimal are the currencies whose Checkout.com value must end in 0.
var threeDecimal = map[string]bool{"BHD": true, "IQD": true, "JOD": true, "KWD": true, "LYD": true, "OMR": true, "TND": true}

// refundBody maps a checked request to the provider's body.
func refundBody(req *normalize.RefundRequest) (*wireRefundRequest, error) {
	body := &wireRefundRequest{
		TrackID: req.RefundID, Description: req.Description, Metadata: req.Metadata,
		Udf1: req.Reference, Udf2: string(req.Reason),
	}
	if req.Amount > 0 {
		v, err := amountValue(req.Amount, req.Currency, "amount")
		if err != nil {
			return nil, err
		}
		body.Value = &v
	}
	for i, li := range req.LineItems {
		p := wireProduct{SKU: li.ID, Quantity: li.Quantity}
		if li.Amount != nil {
			v, err := amountValue(*li.Amount, req.Currency, fmt.Sprintf("line_items[%d].amount", i))
			if err != nil {
				return nil, err
			}
			p.Price = &v
		}
		body.Products = append(body.Products, p)
	}
	return body, nil
}

// amountValue converts amount for field, refusing what the provider cannot
// express.
func amountValue(amount int64, currency, field string) (int64, error) {
	v, err := toValue(amount, currency)
	if err != nil {
		return 0, normalize.FieldErr(normalize.CodeProviderLimitExceeded, field, "unit",
			fmt.Sprintf("%s: %s cannot express %d in %s", field, Type, amount, currency))
	}
	if threeDecimal[currency] && v%10 != 0 {
		return 0, normalize.FieldErr(normalize.CodeProviderLimitExceeded, field, "unit",
			fmt.Sprintf("%s: %s takes %s amounts in multiples of 10", field, Type, currency))
	}
	return v, nil
}

// approved reports whether a responseCode is an approval (it starts with 1).
func approved(code string) bool { return strings.HasPrefix(code, "1") }

// declineMessage says what kind of decline a responseCode is.
func declineMessage(code string) string {
	switch {
	case strings.HasPrefix(code, "2"):
		return "Checkout.com declined the refund (soft decline)"
	case strings.HasPrefix(code, "3"):
		return "Checkout.com declined the refund (hard decline)"
	case strings.HasPrefix(code, "4"):
		return "Checkout.com declined the refund (risk)"
	}
	return "Checkout.com declined the refund"
}

// status maps a refund charge to a refund status: a responseCode starting
// with 1 succeeded, any other code failed; without a code, a "Refunded"
// status succeeded and anything else is pending.
func (w *wireCharge) status() normalize.Status {
	code := string(w.ResponseCode)
	switch {
	case code == "" && strings.EqualFold(w.Status, "Refunded"):
		return normalize.StatusSucceeded
	case code == "":
		return normalize.StatusPending
	case approved(code):
		return normalize.StatusSucceeded
	}
	return normalize.StatusFailed
}

// refund maps a refund charge to a ProviderRefund.
func (w *wireCharge) refund() (*normalize.ProviderRefund, error) {
	amount, err := fromValue(int64(w.Value), w.Currency)
	if err != nil {
		return nil, err
	}
	r := &normalize.ProviderRefund{ProviderRefundID: w.ID, Status: w.status(), ProviderStatus: w.Status,
		Amount: amount, Currency: w.Currency, Livemode: w.LiveMode}
	if r.Status == normalize.StatusFailed {
		r.Failure = w.failure()
	}
	return r, nil
}

func (w *wireCharge) failure() *normalize.Failure {
	code := string(w.ResponseCode)
	return &normalize.Failure{Code: normalize.CodeRefundDeclined, Message: declineMessage(code),
		ProviderCode: code, ProviderMessage: w.ResponseMessage}
}

// isRefund reports whether a history entry is a refund of paymentID: not
// the charge itself, not an authorization, capture, void or chargeback, and
// either pointing at paymentID or carrying a refund status.
func (w *wireCharge) isRefund(paymentID string) bool {
	if w.ID == paymentID {
		return false
	}
	s := strings.ToLower(w.Status)
	if strings.Contains(s, "authori") || strings.Contains(s, "captur") || strings.Contains(s, "void") ||
		strings.Contains(s, "chargeback") {
		return false
	}
	return w.OriginalID == paymentID || strings.Contains(s, "refund")
}

// parseTime reads an RFC 3339 time; a bad or empty one is unknown.
func parseTime(s string) *time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil
	}
	t = t.UTC()
	return &t
}

// state builds the ProviderState of a capture and its history.
func state(ref normalize.LookupRef, capture *wireCharge, history []wireCharge) (*normalize.ProviderState, error) {
	captured, err := fromValue(int64(capture.Value), capture.Currency)
	if err != nil {
		return nil, err
	}
	st := &normalize.ProviderState{PaymentID: capture.ID, Currency: capture.Currency, CapturedAmount: captured,
		Livemode: capture.LiveMode, CapturedAt: parseTime(capture.Created), PaymentStatus: capture.Status}
	for i := range history {
		w := &history[i]
		if !w.isRefund(ref.PaymentID) {
			continue
		}
		r, err := w.refund()
		if err != nil {
			return nil, err
		}
		if r.Status == normalize.StatusSucceeded {
			st.RefundedAmount += r.Amount
		}
		match := (ref.ProviderRefundID != "" && w.ID == ref.ProviderRefundID) ||
			(ref.RefundID != "" && w.TrackID == ref.RefundID)
		// An approved match wins over a declined one with the same trackId.
		if match && (st.Refund == nil || st.Refund.Status != normalize.StatusSucceeded) {
			st.Refund = r
		}
	}
	return st, nil
}
