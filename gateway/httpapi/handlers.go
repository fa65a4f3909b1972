package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/refundgate/refundgate/gateway"
	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/store"
)

func merchantOf(c *fiber.Ctx) *gateway.Merchant {
	m, _ := c.Locals(localMerchant).(*gateway.Merchant)
	return m
}

// authenticate resolves the bearer key to a merchant.
func (a *API) authenticate(c *fiber.Ctx) error {
	// The scheme is case-insensitive (RFC 9110 section 11.1).
	auth := c.Get(fiber.HeaderAuthorization)
	var m *gateway.Merchant
	if len(auth) > len("Bearer ") && strings.EqualFold(auth[:len("Bearer ")], "Bearer ") {
		m = a.svc.Snapshot().Authenticate(strings.TrimSpace(auth[len("Bearer "):]))
	}
	if m == nil {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="refundgate"`)
		return normalize.Errorf(normalize.CodeUnauthenticated, "send a valid merchant API key as Authorization: Bearer <key>")
	}
	c.Locals(localMerchant, m)
	return c.Next()
}

func (a *API) create(c *fiber.Ctx) error {
	key := c.Get("Idempotency-Key")
	if key == "" {
		return normalize.FieldErr(normalize.CodeIdempotencyKeyRequired, "Idempotency-Key", "required",
			"send an Idempotency-Key header (1-255 printable ASCII characters) so the refund is made once")
	}
	if !validKey(key) {
		return normalize.FieldErr(normalize.CodeIdempotencyKeyRequired, "Idempotency-Key", "format",
			"Idempotency-Key must be 1-255 printable ASCII characters")
	}
	body, err := a.body(c)
	if err != nil {
		return err
	}
	if err := checkContentType(c); err != nil {
		return err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s %s\n", c.Method(), c.Path())
	h.Write(body)
	hash := hex.EncodeToString(h.Sum(nil))
	// A replay of an answer this process holds is answered from it, before
	// the body is decoded again.
	if ans, ok := a.svc.Replay(merchantOf(c), key, hash); ok {
		return a.send(c, ans)
	}
	var in createBody
	if err := decodeStrict(body, &in); err != nil {
		return err
	}
	if err := validateStruct(&in); err != nil {
		return err
	}
	reason := normalize.Reason(in.Reason)
	if reason == "" {
		reason = normalize.ReasonRequestedByCustomer
	}
	items := make([]normalize.LineItem, len(in.LineItems))
	for i, li := range in.LineItems {
		items[i] = normalize.LineItem{ID: li.ID, Amount: li.Amount, Quantity: li.Quantity}
	}
	ans := a.svc.Create(c.UserContext(), merchantOf(c), key, hash, requestIDOf(c), &gateway.CreateInput{
		PaymentID: in.PaymentID, Provider: in.Provider, Amount: in.Amount, Currency: in.Currency, Reason: reason,
		Description: in.Description, Reference: in.Reference, Metadata: in.Metadata, LineItems: items,
	})
	return a.send(c, ans)
}

func (a *API) get(c *fiber.Ctx) error {
	r, err := a.svc.Get(c.UserContext(), merchantOf(c), c.Params("id"))
	if err != nil {
		return err
	}
	return a.send(c, gateway.RefundAnswer(r, http.StatusOK))
}

func (a *API) approve(c *fiber.Ctx) error {
	return a.send(c, a.svc.Approve(c.UserContext(), merchantOf(c), c.Params("id"), requestIDOf(c)))
}

func (a *API) cancel(c *fiber.Ctx) error {
	r, err := a.svc.Cancel(c.UserContext(), merchantOf(c), c.Params("id"))
	if err != nil {
		return err
	}
	return a.send(c, gateway.RefundAnswer(r, http.StatusOK))
}

func (a *API) sync(c *fiber.Ctx) error {
	r, err := a.svc.Sync(c.UserContext(), merchantOf(c), c.Params("id"))
	if err != nil {
		return err
	}
	return a.send(c, gateway.RefundAnswer(r, http.StatusOK))
}

type listAnswer struct {
	Object  string            `json:"object"`
	Data    []json.RawMessage `json:"data"`
	HasMore bool              `json:"has_more"`
}

func (a *API) list(c *fiber.Ctx) error {
	q, err := listQuery(c, merchantOf(c).ID)
	if err != nil {
		return err
	}
	rs, more, err := a.svc.Store().ListRefunds(c.UserContext(), q)
	if err != nil {
		return err
	}
	out := listAnswer{Object: "list", Data: make([]json.RawMessage, len(rs)), HasMore: more}
	for i, r := range rs {
		out.Data[i] = gateway.MarshalRefund(r)
	}
	return c.JSON(out)
}

func listQuery(c *fiber.Ctx, merchant string) (store.ListQuery, error) {
	q := store.ListQuery{MerchantID: merchant, PaymentID: c.Query("payment_id"), Provider: c.Query("provider"),
		Status: normalize.Status(c.Query("status")), StartingAfter: c.Query("starting_after"), Limit: 20}
	var bad []normalize.FieldError
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			bad = append(bad, normalize.FieldError{Field: "limit", Code: "range", Message: "limit must be an integer from 1 to 100"})
		}
		q.Limit = n
	}
	if q.Status != "" && !q.Status.Valid() {
		bad = append(bad, normalize.FieldError{Field: "status", Code: "oneof",
			Message: "status must be one of requires_approval, pending, succeeded, failed, canceled"})
	}
	for _, f := range []struct {
		name string
		dst  **time.Time
	}{{"created_gte", &q.CreatedGTE}, {"created_lt", &q.CreatedLT}} {
		if s := c.Query(f.name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				bad = append(bad, normalize.FieldError{Field: f.name, Code: "rfc3339", Message: f.name + " must be an RFC 3339 time like 2026-11-22T10:00:00Z"})
				continue
			}
			t = t.UTC()
			*f.dst = &t
		}
	}
	if len(bad) > 0 {
		return q, &normalize.Error{Code: normalize.CodeValidationFailed, Param: bad[0].Field, Message: bad[0].Message, Fields: bad}
	}
	return q, nil
}

func (a *API) refundable(c *fiber.Ctx) error {
	r, err := a.svc.Refundable(c.UserContext(), merchantOf(c), c.Params("payment_id"), c.Query("provider"))
	if err != nil {
		return err
	}
	return c.JSON(r)
}

type providerCaps struct {
	Partial    bool               `json:"partial"`
	Multiple   bool               `json:"multiple"`
	Reasons    []normalize.Reason `json:"reasons"`
	Idempotent bool               `json:"idempotent"`
}

type providerInfo struct {
	Object       string       `json:"object"`
	Name         string       `json:"name"`
	Type         string       `json:"type"`
	Livemode     bool         `json:"livemode"`
	Capabilities providerCaps `json:"capabilities"`
	Breaker      struct {
		State string `json:"state"`
	} `json:"breaker"`
}

func (a *API) providers(c *fiber.Ctx) error {
	snap := a.svc.Snapshot()
	out := struct {
		Object  string         `json:"object"`
		Data    []providerInfo `json:"data"`
		HasMore bool           `json:"has_more"`
	}{Object: "list", Data: []providerInfo{}}
	for _, name := range merchantOf(c).Providers {
		acct := snap.Account(name)
		if acct == nil {
			continue
		}
		reasons := acct.Caps.Reasons
		if reasons == nil {
			reasons = []normalize.Reason{}
		}
		p := providerInfo{Object: "provider", Name: acct.Name, Type: acct.Type, Livemode: acct.Caps.Livemode,
			Capabilities: providerCaps{Partial: acct.Caps.Partial, Multiple: acct.Caps.Multiple, Reasons: reasons, Idempotent: acct.Caps.Idempotent}}
		p.Breaker.State = acct.BreakerState()
		out.Data = append(out.Data, p)
	}
	return c.JSON(out)
}

func (a *API) webhook(c *fiber.Ctx) error {
	body, err := a.body(c)
	if err != nil {
		return err
	}
	h := http.Header{}
	c.Request().Header.VisitAll(func(k, v []byte) { h.Add(string(k), string(v)) })
	if err := a.svc.Webhook(c.UserContext(), c.Params("provider"), h, append([]byte(nil), body...)); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"received": true})
}

func (a *API) sandboxPayment(c *fiber.Ctx) error {
	body, err := a.body(c)
	if err != nil {
		return err
	}
	if err := checkContentType(c); err != nil {
		return err
	}
	var in struct {
		Provider string `json:"provider" validate:"required"`
		Amount   int64  `json:"amount" validate:"min=1"`
		Currency string `json:"currency" validate:"required,iso4217"`
	}
	if err := decodeStrict(body, &in); err != nil {
		return err
	}
	if err := validateStruct(&in); err != nil {
		return err
	}
	id, err := a.opts.SandboxPayment(in.Provider, in.Amount, in.Currency)
	if err != nil {
		return normalize.FieldErr(normalize.CodeValidationFailed, "provider", "sandbox", err.Error())
	}
	return c.Status(http.StatusCreated).JSON(fiber.Map{"payment_id": id, "provider": in.Provider, "amount": in.Amount, "currency": in.Currency})
}
