package sandbox

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The Yoco Checkout API simulator, served under /yoco/api (so a client's
// base URL is http://HOST/yoco/api).
//
//   - POST /checkouts/{checkoutId}/refund with "Authorization: Bearer
//     sk_test_…|sk_live_…" and an optional Idempotency-Key. The body is
//     {"metadata":{…}} (an empty body is allowed, as in the seed's cURL) and,
//     when Options.YocoPartialRefunds is set, "amount" (integer cents; absent =
//     the whole remaining balance). The answer is 202 with exactly the seed's
//     {"id","refundId","message","status":"successful"}.
//   - The refund becomes final after Options.YocoSettleDelay: the checkout's
//     status becomes "refunded" (or "reversed" for the Options.YocoReversedRate
//     share of checkouts) once fully refunded, and a refund.succeeded webhook
//     is sent. A partially refunded checkout stays "completed". The
//     Options.YocoFailedRate share of refunds end failed instead: a
//     refund.failed webhook, the checkout keeps its status and the amount is
//     refundable again.
//   - GET /checkouts/{checkoutId} answers the checkout object.
//
// Sandbox choices where the documents are silent: Yoco documents no JSON
// error body, so errors carry {"errorType","errorCode","errorMessage",
// "displayMessage"}; 403 for a missing or wrong key; 404 checkout_not_found
// for an unknown checkout or one of the other mode (a test key never sees a
// live checkout); 400 partial_refunds_not_enabled when an amount is sent
// while partial refunds are off; 400 checkout_already_refunded when nothing
// is left to refund (including a refund still settling); 400
// checkout_not_completed for a checkout still created, started or
// processing; 400 refund_amount_exceeds_balance and 400 invalid_request for
// bad bodies. Test-mode checkouts can be refunded (the real API wants live
// ones) unless Options.YocoLiveRefundsOnly is set, which answers 400
// live_checkout_required. Idempotency keys bind only to accepted (202)
// answers.
type yocoSim struct {
	s          *Sandbox
	merchantID string

	mu        sync.Mutex
	checkouts map[string]*yocoCheckout
	all       []*yocoRefund
}

type yocoCheckout struct {
	id, paymentID, currency string
	amount                  int64
	live                    bool
	reversed                bool
	status                  string
	reserved                int64 // accepted refunds, settled or not
	settled                 int64
	refunds                 []*yocoRefund
}

type yocoRefund struct {
	id, checkoutID string
	amount         int64
	currency       string
	status         string // pending, succeeded, failed
	idemKey        string
	metadata       map[string]any
	created        time.Time
}

func newYocoSim(s *Sandbox) *yocoSim {
	return &yocoSim{s: s, merchantID: s.uuid(), checkouts: map[string]*yocoCheckout{}}
}

func (y *yocoSim) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /yoco/api/checkouts/{id}/refund", y.s.withLatency(ProviderYoco, y.handleRefund))
	mux.HandleFunc("GET /yoco/api/checkouts/{id}", y.s.withLatency(ProviderYoco, y.handleGet))
}

// Yoco checkout statuses. A checkout is created by the sandbox in one of
// the first four; refunds move a completed one to refunded or reversed.
const (
	YocoCheckoutCreated    = "created"
	YocoCheckoutStarted    = "started"
	YocoCheckoutProcessing = "processing"
	YocoCheckoutCompleted  = "completed"
	YocoCheckoutRefunded   = "refunded"
	YocoCheckoutReversed   = "reversed"
)

func (y *yocoSim) createCheckout(amount int64, currency string, live bool, status string) string {
	c := &yocoCheckout{
		id:        "ch_" + y.s.randString(alnum, 24),
		paymentID: "p_" + y.s.randString(alnum, 24),
		currency:  currency,
		amount:    amount,
		live:      live,
		reversed:  y.s.chance(y.s.opts.YocoReversedRate),
		status:    status,
	}
	y.mu.Lock()
	y.checkouts[c.id] = c
	y.mu.Unlock()
	return c.id
}

// yocoError is the sandbox's Yoco error body.
type yocoError struct {
	ErrorType      string `json:"errorType"`
	ErrorCode      string `json:"errorCode"`
	ErrorMessage   string `json:"errorMessage"`
	DisplayMessage string `json:"displayMessage"`
}

func yocoErrorBody(code, typ, msg string) []byte {
	return mustJSON(yocoError{ErrorType: typ, ErrorCode: code, ErrorMessage: msg, DisplayMessage: msg})
}

// auth returns whether the request carries the live key; ok is false when
// it carries neither key.
func (y *yocoSim) auth(r *http.Request) (live, ok bool) {
	k := y.s.keys.Yoco
	a := r.Header.Get("Authorization")
	tok, found := strings.CutPrefix(a, "Bearer ")
	if !found {
		return false, false
	}
	switch tok {
	case k.TestSecretKey:
		return false, true
	case k.LiveSecretKey:
		return true, true
	}
	return false, false
}

var yocoForbidden = yocoErrorBody("forbidden", "authentication_error", "A key is required, but has not been specified.")

// yocoRefundResponse is the 202 body, field for field as in the seed.
type yocoRefundResponse struct {
	ID       string `json:"id"`
	RefundID string `json:"refundId"`
	Message  string `json:"message"`
	Status   string `json:"status"`
}

func (y *yocoSim) handleRefund(w http.ResponseWriter, r *http.Request) {
	live, ok := y.auth(r)
	if !ok {
		writeRaw(w, http.StatusForbidden, yocoForbidden)
		return
	}
	body, err := readBody(r)
	if err != nil {
		writeRaw(w, http.StatusBadRequest, yocoErrorBody("invalid_request", "invalid_request_error", "The request body could not be read."))
		return
	}
	id := r.PathValue("id")
	c := refundCall{
		provider:    ProviderYoco,
		body:        body,
		serverError: yocoErrorBody("internal_error", "api_error", "An internal error occurred."),
		apply: func() outcome {
			return y.refund(id, live, body, r.Header.Get("Idempotency-Key"))
		},
	}
	if k := r.Header.Get("Idempotency-Key"); k != "" {
		c.idemScope, c.idemKey = ProviderYoco+"\x00"+strconv.FormatBool(live), k
	}
	y.s.serveRefund(w, r, c)
}

func yocoBad(code, msg string) outcome {
	return outcome{status: http.StatusBadRequest, body: yocoErrorBody(code, "invalid_request_error", msg)}
}

func (y *yocoSim) refund(id string, live bool, body []byte, idemKey string) outcome {
	var req struct {
		Metadata map[string]any  `json:"metadata"`
		Amount   json.RawMessage `json:"amount"`
	}
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&req); err != nil {
			return yocoBad("invalid_request", "The request body is not a valid JSON object: "+err.Error())
		}
	}
	var amount int64
	if len(req.Amount) > 0 && string(req.Amount) != "null" {
		if !y.s.opts.YocoPartialRefunds {
			return yocoBad("partial_refunds_not_enabled", "Partial refunds are not enabled for this account; omit amount to refund the checkout in full.")
		}
		n, ok := jsonInt(req.Amount)
		if !ok || n < 1 {
			return yocoBad("invalid_amount", "amount must be a positive integer number of cents.")
		}
		amount = n
	}
	now := y.s.now()
	y.mu.Lock()
	c := y.checkouts[id]
	if c == nil || c.live != live {
		y.mu.Unlock()
		return outcome{status: http.StatusNotFound, body: yocoErrorBody("checkout_not_found", "invalid_request_error", "No checkout was found with the given id.")}
	}
	if !c.live && y.s.opts.YocoLiveRefundsOnly {
		y.mu.Unlock()
		return yocoBad("live_checkout_required", "In order to process a refund, the Checkout must have been created using live keys.")
	}
	remaining := c.amount - c.reserved
	if c.status == YocoCheckoutRefunded || c.status == YocoCheckoutReversed || remaining <= 0 {
		y.mu.Unlock()
		return yocoBad("checkout_already_refunded", "The checkout has already been refunded.")
	}
	if c.status != YocoCheckoutCompleted {
		y.mu.Unlock()
		return yocoBad("checkout_not_completed", "Only a completed checkout can be refunded; this one is "+c.status+".")
	}
	if amount == 0 {
		amount = remaining
	}
	if amount > remaining {
		y.mu.Unlock()
		return yocoBad("refund_amount_exceeds_balance", "The refund amount exceeds the checkout's remaining balance of "+strconv.FormatInt(remaining, 10)+".")
	}
	rf := &yocoRefund{
		id: "rfd_" + y.s.randString(alnum, 25), checkoutID: c.id, amount: amount, currency: c.currency,
		status: "pending", idemKey: idemKey, metadata: req.Metadata, created: now,
	}
	c.reserved += amount
	c.refunds = append(c.refunds, rf)
	y.all = append(y.all, rf)
	if y.s.opts.YocoSettleDelay <= 0 {
		y.settleLocked(c, rf)
	}
	y.mu.Unlock()
	if d := y.s.opts.YocoSettleDelay; d > 0 {
		y.s.after(d, func() {
			y.mu.Lock()
			y.settleLocked(c, rf)
			y.mu.Unlock()
		})
	}
	return outcome{status: http.StatusAccepted, bind: true, body: mustJSON(yocoRefundResponse{
		ID: c.id, RefundID: rf.id, Message: "Your refund has been processed", Status: "successful",
	})}
}

// settleLocked makes a pending refund final and sends its webhook; y.mu is
// held.
func (y *yocoSim) settleLocked(c *yocoCheckout, rf *yocoRefund) {
	if rf.status != "pending" {
		return
	}
	if y.s.chance(y.s.opts.YocoFailedRate) {
		rf.status = "failed"
		c.reserved -= rf.amount
		y.sendWebhook(c, rf, "refund.failed")
		return
	}
	rf.status = "succeeded"
	c.settled += rf.amount
	if c.settled >= c.amount {
		c.status = "refunded"
		if c.reversed {
			c.status = "reversed"
		}
	}
	y.sendWebhook(c, rf, "refund.succeeded")
}

// yocoEvent is the webhook event body:
//
//	{"id":"evt_…","type":"refund.succeeded","createdDate":"…","payload":{"id":"rfd_…",
//	 "type":"refund","amount":900,"currency":"ZAR","paymentId":"p_…","status":"succeeded",
//	 "mode":"test"|"live","metadata":{"checkoutId":"ch_…", …the request's metadata…}}}
type yocoEvent struct {
	ID          string           `json:"id"`
	Type        string           `json:"type"`
	CreatedDate string           `json:"createdDate"`
	Payload     yocoEventPayload `json:"payload"`
}

type yocoEventPayload struct {
	ID        string         `json:"id"`
	Type      string         `json:"type"`
	Amount    int64          `json:"amount"`
	Currency  string         `json:"currency"`
	PaymentID string         `json:"paymentId"`
	Status    string         `json:"status"`
	Mode      string         `json:"mode"`
	Metadata  map[string]any `json:"metadata"`
}

func modeName(live bool) string {
	if live {
		return "live"
	}
	return "test"
}

const yocoTimeLayout = "2006-01-02T15:04:05.000Z"

func (y *yocoSim) sendWebhook(c *yocoCheckout, rf *yocoRefund, typ string) {
	if y.s.hooks.url(ProviderYoco) == "" {
		return
	}
	md := make(map[string]any, len(rf.metadata)+1)
	for k, v := range rf.metadata {
		md[k] = v
	}
	md["checkoutId"] = c.id
	status := "succeeded"
	if typ == "refund.failed" {
		status = "failed"
	}
	ev := yocoEvent{
		ID: "evt_" + y.s.randString(alnum, 24), Type: typ,
		CreatedDate: y.s.now().UTC().Format(yocoTimeLayout),
		Payload: yocoEventPayload{
			ID: rf.id, Type: "refund", Amount: rf.amount, Currency: rf.currency, PaymentID: c.paymentID,
			Status: status, Mode: modeName(c.live), Metadata: md,
		},
	}
	msgID := "msg_" + y.s.randString(alnum, 27)
	y.s.hooks.send(ProviderYoco, mustJSON(ev), standardWebhookSigner(y.s.keys.Yoco.WebhookSecret, msgID))
}

// yocoCheckoutJSON is the checkout object of GET /checkouts/{id}. The fields
// up to redirectUrl are Yoco's; refundedAmount and refunds are sandbox
// extensions so a client can reconcile.
type yocoCheckoutJSON struct {
	ID             string         `json:"id"`
	Status         string         `json:"status"`
	Amount         int64          `json:"amount"`
	Currency       string         `json:"currency"`
	PaymentID      string         `json:"paymentId"`
	SuccessURL     *string        `json:"successUrl"`
	CancelURL      *string        `json:"cancelUrl"`
	FailureURL     *string        `json:"failureUrl"`
	Metadata       map[string]any `json:"metadata"`
	MerchantID     string         `json:"merchantId"`
	TotalDiscount  *int64         `json:"totalDiscount"`
	TotalTaxAmount *int64         `json:"totalTaxAmount"`
	SubtotalAmount *int64         `json:"subtotalAmount"`
	LineItems      []any          `json:"lineItems"`
	ExternalID     *string        `json:"externalId"`
	ProcessingMode string         `json:"processingMode"`
	RedirectURL    string         `json:"redirectUrl"`

	// RefundedAmount (sandbox extension) is the settled refunded amount.
	RefundedAmount int64 `json:"refundedAmount"`
	// Refunds (sandbox extension) lists the refunds, oldest first.
	Refunds []yocoRefundJSON `json:"refunds"`
}

type yocoRefundJSON struct {
	ID          string         `json:"id"`
	Amount      int64          `json:"amount"`
	Currency    string         `json:"currency"`
	Status      string         `json:"status"`
	CreatedDate string         `json:"createdDate"`
	Metadata    map[string]any `json:"metadata"`
}

func (y *yocoSim) handleGet(w http.ResponseWriter, r *http.Request) {
	live, ok := y.auth(r)
	if !ok {
		writeRaw(w, http.StatusForbidden, yocoForbidden)
		return
	}
	y.mu.Lock()
	c := y.checkouts[r.PathValue("id")]
	if c == nil || c.live != live {
		y.mu.Unlock()
		writeRaw(w, http.StatusNotFound, yocoErrorBody("checkout_not_found", "invalid_request_error", "No checkout was found with the given id."))
		return
	}
	out := yocoCheckoutJSON{
		ID: c.id, Status: c.status, Amount: c.amount, Currency: c.currency, PaymentID: c.paymentID,
		Metadata: map[string]any{}, MerchantID: y.merchantID, ProcessingMode: modeName(c.live),
		RedirectURL: "https://c.yoco.com/checkout/" + c.id, RefundedAmount: c.settled,
		Refunds: make([]yocoRefundJSON, 0, len(c.refunds)),
	}
	for _, rf := range c.refunds {
		md := rf.metadata
		if md == nil {
			md = map[string]any{}
		}
		out.Refunds = append(out.Refunds, yocoRefundJSON{
			ID: rf.id, Amount: rf.amount, Currency: rf.currency, Status: rf.status,
			CreatedDate: rf.created.UTC().Format(yocoTimeLayout), Metadata: md,
		})
	}
	b := mustJSON(out)
	y.mu.Unlock()
	writeRaw(w, http.StatusOK, b)
}

func (y *yocoSim) refunds(paymentID string) []Refund {
	y.mu.Lock()
	defer y.mu.Unlock()
	list := y.all
	if paymentID != "" {
		c := y.checkouts[paymentID]
		if c == nil {
			return []Refund{}
		}
		list = c.refunds
	}
	out := make([]Refund, 0, len(list))
	for _, rf := range list {
		out = append(out, Refund{ID: rf.id, PaymentID: rf.checkoutID, Amount: rf.amount, Currency: rf.currency, IdempotencyKey: rf.idemKey, Status: rf.status})
	}
	return out
}
