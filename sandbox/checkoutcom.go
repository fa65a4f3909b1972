package sandbox

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// The Checkout.com legacy v2 charges API simulator, served under
// /checkoutcom/v2.
//
// A created payment is an authorization charge ("Authorised") and its
// capture charge ("Captured", originalId = the authorization); the payment
// id handed out is the capture's, charge_test_… (test) or charge_… (live).
//
//   - POST /charges/{chargeId}/refund with the raw secret key in
//     Authorization (no "Bearer"). Body: value (integer minor units, or a
//     numeric string as in the seed example; absent = the uncaptured rest),
//     trackId (≤ 50), description, products[], metadata (≤ 10 pairs, keys and
//     values ≤ 100 chars), udf1…udf5 (≤ 100). Answer 200 with the refund
//     charge object shaped exactly like the seed's response example. Partial
//     and repeated refunds are allowed up to the captured value. There is no
//     idempotency: a repeated POST refunds again.
//   - GET /charges/{chargeId}: the charge object; the sandbox extension fields
//     refundedValue and refundableValue are added for captures.
//   - GET /charges/{chargeId}/history: {"charges":[…]} newest first: the
//     refunds, then the capture, then the authorization.
//   - Webhook {"eventType":"charge.refunded","message":{…refund charge…}} with
//     CKO-Signature = hex HMAC-SHA256 of the body keyed with the secret key of
//     the charge's mode.
//
// Errors are {"errorCode","message","eventId","errors":[…],
// "errorMessageCodes":[…]}. The codes are the sandbox's choice where the docs
// are silent:
//
//	400 70000 Validation error (errorMessageCodes: 70001 value, 70002 trackId,
//	          70003 metadata, 70004 udf, 70005 products, 70006 malformed JSON)
//	401 80001 Unauthorised (missing or wrong secret key, or "Bearer" form)
//	404 83014 Charge not found (also a test key against a live charge)
//	422 83005 Charge cannot be refunded: the authorization's (or a refund's)
//	          charge id was sent instead of the capture's
//	422 83004 Charge already fully refunded
//	422 83013 Refund value exceeds the remaining captured value
type ckoSim struct {
	s *Sandbox

	mu      sync.Mutex
	charges map[string]*ckoCharge
	all     []*ckoCharge
}

type ckoProduct struct {
	Name         string      `json:"name"`
	Description  string      `json:"description"`
	SKU          string      `json:"sku"`
	Price        json.Number `json:"price"`
	Quantity     json.Number `json:"quantity"`
	Image        *string     `json:"image"`
	ShippingCost json.Number `json:"shippingCost"`
	TrackingURL  string      `json:"trackingUrl"`
}

type ckoCharge struct {
	id, originalID string
	live           bool
	created        time.Time
	value          int64
	currency       string
	trackID        string
	description    string
	status         string // Authorised, Captured, Refunded
	metadata       map[string]string
	products       []ckoProduct
	udf            [5]string
	pay            *ckoPayment
}

type ckoPayment struct {
	auth, capture *ckoCharge
	refunds       []*ckoCharge
	refunded      int64
}

func newCkoSim(s *Sandbox) *ckoSim {
	return &ckoSim{s: s, charges: map[string]*ckoCharge{}}
}

func (c *ckoSim) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /checkoutcom/v2/charges/{id}/refund", c.s.withLatency(ProviderCheckoutCom, c.handleRefund))
	mux.HandleFunc("GET /checkoutcom/v2/charges/{id}", c.s.withLatency(ProviderCheckoutCom, c.handleGet))
	mux.HandleFunc("GET /checkoutcom/v2/charges/{id}/history", c.s.withLatency(ProviderCheckoutCom, c.handleHistory))
}

func (c *ckoSim) newID(live bool) string {
	if live {
		return "charge_" + c.s.randString(upperNum, 20)
	}
	return "charge_test_" + c.s.randString(upperNum, 20)
}

// createCharge creates an authorization and its capture and returns both
// ids.
func (c *ckoSim) createCharge(amount int64, currency string, live bool) (capture, auth string) {
	now := c.s.now().UTC()
	p := &ckoPayment{}
	p.auth = &ckoCharge{id: c.newID(live), live: live, created: now, value: amount, currency: currency, status: "Authorised", pay: p}
	p.capture = &ckoCharge{id: c.newID(live), originalID: p.auth.id, live: live, created: now, value: amount, currency: currency, status: "Captured", pay: p}
	c.mu.Lock()
	c.charges[p.auth.id] = p.auth
	c.charges[p.capture.id] = p.capture
	c.mu.Unlock()
	return p.capture.id, p.auth.id
}

func (c *ckoSim) authorizationOf(captureID string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := c.charges[captureID]
	if ch == nil || ch.pay.capture != ch {
		return "", false
	}
	return ch.pay.auth.id, true
}

// ckoErrorJSON is the v2 error body.
type ckoErrorJSON struct {
	ErrorCode         string   `json:"errorCode"`
	Message           string   `json:"message"`
	EventID           string   `json:"eventId"`
	Errors            []string `json:"errors"`
	ErrorMessageCodes []string `json:"errorMessageCodes"`
}

func (c *ckoSim) errorBody(code, msg string, errs, codes []string) []byte {
	if errs == nil {
		errs = []string{msg}
	}
	if codes == nil {
		codes = []string{code}
	}
	return mustJSON(ckoErrorJSON{ErrorCode: code, Message: msg, EventID: c.s.uuid(), Errors: errs, ErrorMessageCodes: codes})
}

func (c *ckoSim) auth(r *http.Request) (live, ok bool) {
	k := c.s.keys.CheckoutCom
	switch r.Header.Get("Authorization") {
	case "":
		return false, false
	case k.TestSecretKey:
		return false, true
	case k.LiveSecretKey:
		return true, true
	}
	return false, false
}

func (c *ckoSim) unauthorized(w http.ResponseWriter) {
	writeRaw(w, http.StatusUnauthorized, c.errorBody("80001", "Unauthorised", []string{"Invalid or missing secret key in the Authorization header"}, nil))
}

func (c *ckoSim) notFound() outcome {
	return outcome{status: http.StatusNotFound, body: c.errorBody("83014", "Charge not found", nil, nil)}
}

// ckoChargeJSON is a v2 charge object; its fields are the seed's response
// example, in its order.
type ckoChargeJSON struct {
	ID                   string            `json:"id"`
	OriginalID           string            `json:"originalId,omitempty"`
	LiveMode             bool              `json:"liveMode"`
	Created              string            `json:"created"`
	Value                int64             `json:"value"`
	Currency             string            `json:"currency"`
	TrackID              string            `json:"trackId"`
	Description          string            `json:"description"`
	ChargeMode           int               `json:"chargeMode"`
	ResponseMessage      string            `json:"responseMessage"`
	ResponseAdvancedInfo string            `json:"responseAdvancedInfo"`
	ResponseCode         string            `json:"responseCode"`
	Status               string            `json:"status"`
	HasChargeback        string            `json:"hasChargeback"`
	Metadata             map[string]string `json:"metadata"`
	Products             []ckoProduct      `json:"products"`
	Udf1                 string            `json:"udf1"`
	Udf2                 string            `json:"udf2"`
	Udf3                 string            `json:"udf3"`
	Udf4                 string            `json:"udf4"`
	Udf5                 string            `json:"udf5"`

	// RefundedValue (sandbox extension, captures on GET only) is the total
	// refunded so far.
	RefundedValue *int64 `json:"refundedValue,omitempty"`
	// RefundableValue (sandbox extension, captures on GET only) is what can
	// still be refunded.
	RefundableValue *int64 `json:"refundableValue,omitempty"`
}

func (ch *ckoCharge) json() ckoChargeJSON {
	md := ch.metadata
	if md == nil {
		md = map[string]string{}
	}
	pr := ch.products
	if pr == nil {
		pr = []ckoProduct{}
	}
	return ckoChargeJSON{
		ID: ch.id, OriginalID: ch.originalID, LiveMode: ch.live, Created: ch.created.Format(time.RFC3339),
		Value: ch.value, Currency: ch.currency, TrackID: ch.trackID, Description: ch.description,
		ChargeMode: 1, ResponseMessage: "Approved", ResponseAdvancedInfo: "Approved", ResponseCode: "10000",
		Status: ch.status, HasChargeback: "N", Metadata: md, Products: pr,
		Udf1: ch.udf[0], Udf2: ch.udf[1], Udf3: ch.udf[2], Udf4: ch.udf[3], Udf5: ch.udf[4],
	}
}

type ckoRefundRequest struct {
	Value       json.RawMessage   `json:"value"`
	TrackID     string            `json:"trackId"`
	Description string            `json:"description"`
	Products    []ckoProduct      `json:"products"`
	Metadata    map[string]string `json:"metadata"`
	Udf1        string            `json:"udf1"`
	Udf2        string            `json:"udf2"`
	Udf3        string            `json:"udf3"`
	Udf4        string            `json:"udf4"`
	Udf5        string            `json:"udf5"`
}

// parseValue reads value as a JSON integer or a numeric string; 0 means
// absent.
func parseValue(raw json.RawMessage) (int64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return 0, true
	}
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return 0, false
	}
	return n, true
}

func (c *ckoSim) handleRefund(w http.ResponseWriter, r *http.Request) {
	live, ok := c.auth(r)
	if !ok {
		c.unauthorized(w)
		return
	}
	body, err := readBody(r)
	if err != nil {
		writeRaw(w, http.StatusBadRequest, c.errorBody("70000", "Validation error", []string{"Request body could not be read"}, []string{"70006"}))
		return
	}
	id := r.PathValue("id")
	c.s.serveRefund(w, r, refundCall{
		provider:    ProviderCheckoutCom,
		body:        body,
		serverError: c.errorBody("50000", "Internal server error", nil, nil),
		apply:       func() outcome { return c.refund(id, live, body) },
	})
}

func (c *ckoSim) validation(errs, codes []string) outcome {
	return outcome{status: http.StatusBadRequest, body: c.errorBody("70000", "Validation error", errs, codes)}
}

func (c *ckoSim) refund(id string, live bool, body []byte) outcome {
	var req ckoRefundRequest
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return c.validation([]string{"Malformed request: " + err.Error()}, []string{"70006"})
		}
	}
	var errs, codes []string
	bad := func(msg, code string) { errs, codes = append(errs, msg), append(codes, code) }
	value, ok := parseValue(req.Value)
	if !ok {
		bad("Value must be a positive integer", "70001")
	}
	if utf8.RuneCountInString(req.TrackID) > 50 {
		bad("Track id must not exceed 50 characters", "70002")
	}
	if len(req.Metadata) > 10 {
		bad("Metadata must not have more than 10 key-value pairs", "70003")
	}
	for k, v := range req.Metadata {
		if utf8.RuneCountInString(k) > 100 || utf8.RuneCountInString(v) > 100 {
			bad("Metadata keys and values must not exceed 100 characters", "70003")
			break
		}
	}
	udf := [5]string{req.Udf1, req.Udf2, req.Udf3, req.Udf4, req.Udf5}
	for i, u := range udf {
		if utf8.RuneCountInString(u) > 100 {
			bad("Udf"+strconv.Itoa(i+1)+" must not exceed 100 characters", "70004")
		}
	}
	if len(errs) > 0 {
		return c.validation(errs, codes)
	}
	now := c.s.now().UTC()
	c.mu.Lock()
	ch := c.charges[id]
	if ch == nil || ch.live != live {
		c.mu.Unlock()
		return c.notFound()
	}
	p := ch.pay
	if p.capture != ch {
		c.mu.Unlock()
		return outcome{status: http.StatusUnprocessableEntity, body: c.errorBody("83005",
			"Charge cannot be refunded: use the charge id of the capture, not of the authorization or a refund", nil, nil)}
	}
	remaining := ch.value - p.refunded
	if remaining <= 0 {
		c.mu.Unlock()
		return outcome{status: http.StatusUnprocessableEntity, body: c.errorBody("83004", "Charge already fully refunded", nil, nil)}
	}
	if value == 0 {
		value = remaining
	}
	if value > remaining {
		c.mu.Unlock()
		return outcome{status: http.StatusUnprocessableEntity, body: c.errorBody("83013",
			"Refund value exceeds the remaining captured value", []string{"Refund value " + strconv.FormatInt(value, 10) + " exceeds the remaining " + strconv.FormatInt(remaining, 10)}, nil)}
	}
	rf := &ckoCharge{
		id: c.newID(live), originalID: ch.id, live: live, created: now, value: value, currency: ch.currency,
		trackID: req.TrackID, description: req.Description, status: "Refunded",
		metadata: req.Metadata, products: req.Products, udf: udf, pay: p,
	}
	p.refunded += value
	p.refunds = append(p.refunds, rf)
	c.charges[rf.id] = rf
	c.all = append(c.all, rf)
	out := rf.json()
	c.mu.Unlock()
	b := mustJSON(out)
	c.sendWebhook(live, out)
	return outcome{status: http.StatusOK, body: b}
}

// ckoEvent is the webhook body.
type ckoEvent struct {
	EventType string        `json:"eventType"`
	Message   ckoChargeJSON `json:"message"`
}

func (c *ckoSim) sendWebhook(live bool, charge ckoChargeJSON) {
	if c.s.hooks.url(ProviderCheckoutCom) == "" {
		return
	}
	key := c.s.keys.CheckoutCom.TestSecretKey
	if live {
		key = c.s.keys.CheckoutCom.LiveSecretKey
	}
	c.s.hooks.send(ProviderCheckoutCom, mustJSON(ckoEvent{EventType: "charge.refunded", Message: charge}), ckoSigner(key))
}

func (c *ckoSim) lookup(w http.ResponseWriter, r *http.Request) (*ckoCharge, bool) {
	live, ok := c.auth(r)
	if !ok {
		c.unauthorized(w)
		return nil, false
	}
	ch := c.charges[r.PathValue("id")]
	if ch == nil || ch.live != live {
		nf := c.notFound()
		writeRaw(w, nf.status, nf.body)
		return nil, false
	}
	return ch, true
}

func (c *ckoSim) handleGet(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	ch, ok := c.lookup(w, r)
	if !ok {
		c.mu.Unlock()
		return
	}
	out := ch.json()
	if ch.pay.capture == ch {
		refunded, refundable := ch.pay.refunded, ch.value-ch.pay.refunded
		out.RefundedValue, out.RefundableValue = &refunded, &refundable
	}
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// ckoHistory is the body of GET /charges/{id}/history.
type ckoHistory struct {
	Charges []ckoChargeJSON `json:"charges"`
}

func (c *ckoSim) handleHistory(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	ch, ok := c.lookup(w, r)
	if !ok {
		c.mu.Unlock()
		return
	}
	p := ch.pay
	out := ckoHistory{Charges: make([]ckoChargeJSON, 0, len(p.refunds)+2)}
	for i := len(p.refunds) - 1; i >= 0; i-- {
		out.Charges = append(out.Charges, p.refunds[i].json())
	}
	out.Charges = append(out.Charges, p.capture.json(), p.auth.json())
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (c *ckoSim) refunds(paymentID string) []Refund {
	c.mu.Lock()
	defer c.mu.Unlock()
	list := c.all
	if paymentID != "" {
		ch := c.charges[paymentID]
		if ch == nil {
			return []Refund{}
		}
		list = ch.pay.refunds
	}
	out := make([]Refund, 0, len(list))
	for _, rf := range list {
		out = append(out, Refund{ID: rf.id, PaymentID: rf.originalID, Amount: rf.value, Currency: rf.currency, TrackID: rf.trackID, Status: rf.status})
	}
	return out
}
