package sandbox

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// The Smartpay API v1 simulator, served under /smartpay/v1.
//
//   - POST /refunds with "Authorization: Basic <raw secret key>" (not
//     base64) and an optional Idempotency-Key. Body: payment (required),
//     amount (default the unrefunded rest), currency (required, uppercase,
//     must match the payment's), reason (required: requested_by_customer or
//     fraudulent), description (1–80), reference (1–40), lineItems (ids),
//     metadata (≤ 20 string pairs). Answer 200 with the refund object.
//   - GET /refunds/{id}, GET /refunds (maxResults 1–100, default 20;
//     pageToken; payment filter) → {"object":"collection","pageToken",
//     "nextPageToken","maxResults","results","data":[…]}, newest first.
//   - GET /payments/{id}: the payment object with its refunds;
//     refundedAmount is a sandbox extension.
//   - Webhook refund.created, body
//     {"id":"evt_test_…","object":"event","event":"refund.created",
//     "eventData":{"type":"refund","data":{…refund object…}},
//     "createdAt":<unix ms>,"test":true}, headers Smartpay-Signature (hex
//     HMAC-SHA256 of timestamp + "." + body keyed with the base62-decoded
//     signing secret), Smartpay-Signature-Timestamp (unix milliseconds),
//     Smartpay-Event-Id and Smartpay-Subscription-Id.
//
// Errors are {"statusCode","errorCode","message","details":[…]}: 401
// unauthorized; 404 payment.not-found (also a test key against a live
// payment or the reverse) and refund.not-found; 403 amount.insufficient
// (over-refund or already fully refunded); 400 request.invalid whose details
// are strings starting with the offending field's name. An amount of 0 is
// refused as request.invalid (the docs allow ≥ 0, but an empty refund makes
// no sense). Idempotency keys bind only to created (200) refunds.
type smartpaySim struct {
	s              *Sandbox
	subscriptionID string

	mu       sync.Mutex
	payments map[string]*spPayment
	byID     map[string]*spRefund
	list     [2][]*spRefund // [test, live], oldest first
}

type spPayment struct {
	id, orderID, currency string
	live                  bool
	amount, refunded      int64
	createdAt             int64
	refunds               []*spRefund
}

// spRefundJSON is the refund object.
type spRefundJSON struct {
	ID          string            `json:"id"`
	Object      string            `json:"object"`
	Amount      int64             `json:"amount"`
	Currency    string            `json:"currency"`
	Payment     string            `json:"payment"`
	Reason      string            `json:"reason"`
	Reference   *string           `json:"reference"`
	Description *string           `json:"description"`
	LineItems   []string          `json:"lineItems"`
	Metadata    map[string]string `json:"metadata"`
	Status      string            `json:"status"`
	Test        bool              `json:"test"`
	CreatedAt   int64             `json:"createdAt"`
	UpdatedAt   int64             `json:"updatedAt"`
}

type spRefund struct {
	obj     spRefundJSON
	idemKey string
	body    []byte // the marshalled object
}

func newSmartpaySim(s *Sandbox) *smartpaySim {
	return &smartpaySim{
		s: s, subscriptionID: "whsub_" + s.randString(alnum, 22),
		payments: map[string]*spPayment{}, byID: map[string]*spRefund{},
	}
}

func (p *smartpaySim) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /smartpay/v1/refunds", p.s.withLatency(ProviderSmartpay, p.handleCreate))
	mux.HandleFunc("GET /smartpay/v1/refunds/{id}", p.s.withLatency(ProviderSmartpay, p.handleGet))
	mux.HandleFunc("GET /smartpay/v1/refunds", p.s.withLatency(ProviderSmartpay, p.handleList))
	mux.HandleFunc("GET /smartpay/v1/payments/{id}", p.s.withLatency(ProviderSmartpay, p.handlePayment))
}

func modeTag(live bool) string {
	if live {
		return "live_"
	}
	return "test_"
}

func (p *smartpaySim) createPayment(amount int64, currency string, live bool) string {
	now := p.s.now().UnixMilli()
	pay := &spPayment{
		id:       "payment_" + modeTag(live) + p.s.randString(alnum, 22),
		orderID:  "order_" + modeTag(live) + p.s.randString(alnum, 22),
		currency: currency, live: live, amount: amount, createdAt: now,
	}
	p.mu.Lock()
	p.payments[pay.id] = pay
	p.mu.Unlock()
	return pay.id
}

// spErrorJSON is Smartpay's error body.
type spErrorJSON struct {
	StatusCode int      `json:"statusCode"`
	ErrorCode  string   `json:"errorCode"`
	Message    string   `json:"message"`
	Details    []string `json:"details"`
}

func smartpayErrorBody(status int, code, msg string, details []string) []byte {
	if details == nil {
		details = []string{}
	}
	return mustJSON(spErrorJSON{StatusCode: status, ErrorCode: code, Message: msg, Details: details})
}

func spFail(status int, code, msg string, details ...string) outcome {
	return outcome{status: status, body: smartpayErrorBody(status, code, msg, details)}
}

func (p *smartpaySim) auth(r *http.Request) (live, ok bool) {
	k := p.s.keys.Smartpay
	tok, found := strings.CutPrefix(r.Header.Get("Authorization"), "Basic ")
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

var spUnauthorized = smartpayErrorBody(http.StatusUnauthorized, "unauthorized", "Missing or invalid API key. Use \"Authorization: Basic <secret key>\".", nil)

func (p *smartpaySim) handleCreate(w http.ResponseWriter, r *http.Request) {
	live, ok := p.auth(r)
	if !ok {
		writeRaw(w, http.StatusUnauthorized, spUnauthorized)
		return
	}
	body, err := readBody(r)
	if err != nil {
		o := spFail(http.StatusBadRequest, "request.invalid", "The request body could not be read.")
		writeRaw(w, o.status, o.body)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	c := refundCall{
		provider:    ProviderSmartpay,
		body:        body,
		serverError: smartpayErrorBody(http.StatusInternalServerError, "unexpected_error", "An unexpected error occurred.", nil),
		apply:       func() outcome { return p.create(live, body, key) },
	}
	if key != "" {
		c.idemScope, c.idemKey = ProviderSmartpay+"\x00"+strconv.FormatBool(live), key
	}
	p.s.serveRefund(w, r, c)
}

type spCreateRequest struct {
	Payment     *string           `json:"payment"`
	Amount      json.RawMessage   `json:"amount"`
	Currency    *string           `json:"currency"`
	Reason      *string           `json:"reason"`
	Description *string           `json:"description"`
	Reference   *string           `json:"reference"`
	LineItems   []string          `json:"lineItems"`
	Metadata    map[string]string `json:"metadata"`
}

func (p *smartpaySim) create(live bool, body []byte, idemKey string) outcome {
	var req spCreateRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		return spFail(http.StatusBadRequest, "request.invalid", "The request body is not valid JSON or has a field of the wrong type.", err.Error())
	}
	var details []string
	if req.Payment == nil || *req.Payment == "" {
		details = append(details, "payment is required")
	}
	var amount int64
	if len(req.Amount) > 0 && string(req.Amount) != "null" {
		n, ok := jsonInt(req.Amount)
		if !ok || n < 1 {
			details = append(details, "amount must be a positive integer")
		}
		amount = n
	}
	if req.Currency == nil {
		details = append(details, "currency is required")
	} else if !isUpperCurrency(*req.Currency) {
		details = append(details, "currency must be a three-letter uppercase ISO code")
	}
	if req.Reason == nil {
		details = append(details, "reason is required")
	} else if *req.Reason != "requested_by_customer" && *req.Reason != "fraudulent" {
		details = append(details, "reason must be one of requested_by_customer, fraudulent")
	}
	if d := req.Description; d != nil && (utf8.RuneCountInString(*d) < 1 || utf8.RuneCountInString(*d) > 80) {
		details = append(details, "description length must be between 1 and 80")
	}
	if rf := req.Reference; rf != nil && (utf8.RuneCountInString(*rf) < 1 || utf8.RuneCountInString(*rf) > 40) {
		details = append(details, "reference length must be between 1 and 40")
	}
	if len(req.Metadata) > 20 {
		details = append(details, "metadata must have at most 20 key-value pairs")
	}
	if len(details) > 0 {
		return spFail(http.StatusBadRequest, "request.invalid", "The request is invalid.", details...)
	}
	now := p.s.now().UnixMilli()
	p.mu.Lock()
	pay := p.payments[*req.Payment]
	if pay == nil || pay.live != live {
		p.mu.Unlock()
		return spFail(http.StatusNotFound, "payment.not-found", "No payment was found meeting the requirements.")
	}
	if *req.Currency != pay.currency {
		p.mu.Unlock()
		return spFail(http.StatusBadRequest, "request.invalid", "The request is invalid.", "currency must match the payment's currency "+pay.currency)
	}
	remaining := pay.amount - pay.refunded
	if amount == 0 {
		amount = remaining
	}
	if remaining <= 0 || amount > remaining {
		p.mu.Unlock()
		return spFail(http.StatusForbidden, "amount.insufficient", "Available amount on payment is insufficient to handle the request.")
	}
	li := req.LineItems
	if li == nil {
		li = []string{}
	}
	md := req.Metadata
	if md == nil {
		md = map[string]string{}
	}
	rf := &spRefund{idemKey: idemKey, obj: spRefundJSON{
		ID: "refund_" + modeTag(live) + p.s.randString(alnum, 22), Object: "refund", Amount: amount,
		Currency: pay.currency, Payment: pay.id, Reason: *req.Reason, Reference: req.Reference,
		Description: req.Description, LineItems: li, Metadata: md, Status: "succeeded", Test: !live,
		CreatedAt: now, UpdatedAt: now,
	}}
	rf.body = mustJSON(rf.obj)
	pay.refunded += amount
	pay.refunds = append(pay.refunds, rf)
	p.byID[rf.obj.ID] = rf
	mi := 0
	if live {
		mi = 1
	}
	p.list[mi] = append(p.list[mi], rf)
	p.mu.Unlock()
	p.sendWebhook(rf)
	return outcome{status: http.StatusOK, body: rf.body, bind: true}
}

// spEvent is the webhook event body.
type spEvent struct {
	ID        string      `json:"id"`
	Object    string      `json:"object"`
	Event     string      `json:"event"`
	EventData spEventData `json:"eventData"`
	CreatedAt int64       `json:"createdAt"`
	Test      bool        `json:"test"`
}

type spEventData struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

func (p *smartpaySim) sendWebhook(rf *spRefund) {
	if p.s.hooks.url(ProviderSmartpay) == "" {
		return
	}
	live := !rf.obj.Test
	ev := spEvent{
		ID: "evt_" + modeTag(live) + p.s.randString(alnum, 22), Object: "event", Event: "refund.created",
		EventData: spEventData{Type: "refund", Data: rf.body}, CreatedAt: p.s.now().UnixMilli(), Test: !live,
	}
	p.s.hooks.send(ProviderSmartpay, mustJSON(ev), smartpaySigner(p.s.keys.Smartpay.WebhookSecret, ev.ID, p.subscriptionID))
}

func (p *smartpaySim) handleGet(w http.ResponseWriter, r *http.Request) {
	live, ok := p.auth(r)
	if !ok {
		writeRaw(w, http.StatusUnauthorized, spUnauthorized)
		return
	}
	p.mu.Lock()
	rf := p.byID[r.PathValue("id")]
	p.mu.Unlock()
	if rf == nil || rf.obj.Test == live {
		writeRaw(w, http.StatusNotFound, smartpayErrorBody(http.StatusNotFound, "refund.not-found", "No refund was found meeting the requirements.", nil))
		return
	}
	writeRaw(w, http.StatusOK, rf.body)
}

// spCollection is a list answer.
type spCollection struct {
	Object        string            `json:"object"`
	PageToken     string            `json:"pageToken,omitempty"`
	NextPageToken string            `json:"nextPageToken,omitempty"`
	MaxResults    int               `json:"maxResults"`
	Results       int               `json:"results"`
	Data          []json.RawMessage `json:"data"`
}

func encodePageToken(i int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("p" + strconv.Itoa(i)))
}

func decodePageToken(t string) (int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(t)
	if err != nil || len(b) < 2 || b[0] != 'p' {
		return 0, false
	}
	n, err := strconv.Atoi(string(b[1:]))
	return n, err == nil && n >= 0
}

func (p *smartpaySim) handleList(w http.ResponseWriter, r *http.Request) {
	live, ok := p.auth(r)
	if !ok {
		writeRaw(w, http.StatusUnauthorized, spUnauthorized)
		return
	}
	q := r.URL.Query()
	maxResults := 20
	if v := q.Get("maxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			writeRaw(w, http.StatusBadRequest, smartpayErrorBody(http.StatusBadRequest, "request.invalid", "The request is invalid.", []string{"maxResults must be an integer between 1 and 100"}))
			return
		}
		maxResults = n
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	mi := 0
	if live {
		mi = 1
	}
	list := p.list[mi]
	if pid := q.Get("payment"); pid != "" {
		list = nil
		if pay := p.payments[pid]; pay != nil && pay.live == live {
			list = pay.refunds
		}
	}
	// Pages run newest first; a token is the index (oldest first) of the
	// next refund to return, so refunds created meanwhile do not shift it.
	start := len(list) - 1
	tok := q.Get("pageToken")
	if tok != "" {
		n, ok := decodePageToken(tok)
		if !ok || n >= len(list) {
			writeRaw(w, http.StatusBadRequest, smartpayErrorBody(http.StatusBadRequest, "request.invalid", "The request is invalid.", []string{"pageToken is invalid"}))
			return
		}
		start = n
	}
	out := spCollection{Object: "collection", PageToken: tok, MaxResults: maxResults, Data: []json.RawMessage{}}
	i := start
	for ; i >= 0 && len(out.Data) < maxResults; i-- {
		out.Data = append(out.Data, list[i].body)
	}
	if i >= 0 {
		out.NextPageToken = encodePageToken(i)
	}
	out.Results = len(out.Data)
	writeJSON(w, http.StatusOK, out)
}

// spPaymentJSON is the payment object; refundedAmount is a sandbox
// extension.
type spPaymentJSON struct {
	ID             string            `json:"id"`
	Object         string            `json:"object"`
	Amount         int64             `json:"amount"`
	Currency       string            `json:"currency"`
	Order          string            `json:"order"`
	Status         string            `json:"status"`
	Reference      *string           `json:"reference"`
	Description    *string           `json:"description"`
	LineItems      []string          `json:"lineItems"`
	Metadata       map[string]string `json:"metadata"`
	Refunds        []json.RawMessage `json:"refunds"`
	RefundedAmount int64             `json:"refundedAmount"`
	Test           bool              `json:"test"`
	CreatedAt      int64             `json:"createdAt"`
	UpdatedAt      int64             `json:"updatedAt"`
}

func (p *smartpaySim) handlePayment(w http.ResponseWriter, r *http.Request) {
	live, ok := p.auth(r)
	if !ok {
		writeRaw(w, http.StatusUnauthorized, spUnauthorized)
		return
	}
	p.mu.Lock()
	pay := p.payments[r.PathValue("id")]
	if pay == nil || pay.live != live {
		p.mu.Unlock()
		writeRaw(w, http.StatusNotFound, smartpayErrorBody(http.StatusNotFound, "payment.not-found", "No payment was found meeting the requirements.", nil))
		return
	}
	out := spPaymentJSON{
		ID: pay.id, Object: "payment", Amount: pay.amount, Currency: pay.currency, Order: pay.orderID,
		Status: "succeeded", LineItems: []string{}, Metadata: map[string]string{},
		Refunds: make([]json.RawMessage, 0, len(pay.refunds)), RefundedAmount: pay.refunded,
		Test: !pay.live, CreatedAt: pay.createdAt, UpdatedAt: pay.createdAt,
	}
	for _, rf := range pay.refunds {
		out.Refunds = append(out.Refunds, rf.body)
		out.UpdatedAt = rf.obj.CreatedAt
	}
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (p *smartpaySim) refunds(paymentID string) []Refund {
	p.mu.Lock()
	defer p.mu.Unlock()
	var list []*spRefund
	if paymentID != "" {
		if pay := p.payments[paymentID]; pay != nil {
			list = pay.refunds
		}
	} else {
		list = append(append(list, p.list[0]...), p.list[1]...)
	}
	out := make([]Refund, 0, len(list))
	for _, rf := range list {
		out = append(out, Refund{ID: rf.obj.ID, PaymentID: rf.obj.Payment, Amount: rf.obj.Amount, Currency: rf.obj.Currency, IdempotencyKey: rf.idemKey, Status: rf.obj.Status})
	}
	return out
}
