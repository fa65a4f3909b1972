package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
)

// The control surface, beside the provider APIs under /_sandbox (JSON;
// provider is "yoco", "checkoutcom" or "smartpay"):
//
//	GET    /_sandbox/keys                       → Keys
//	POST   /_sandbox/payments                   {"provider","amount","currency","mode"?,"status"?} → 201 {"payment_id",…}
//	GET    /_sandbox/faults                     → {"data":[Fault…]}
//	PUT    /_sandbox/faults                     {"provider","mode","rate","latency_ms"} → 200 {"data":[Fault…]}
//	DELETE /_sandbox/faults[?provider=]         → 204
//	PUT    /_sandbox/webhooks                   {"provider","url"} → 200
//	GET    /_sandbox/webhooks                   → WebhookStats
//	GET    /_sandbox/refunds?provider=&payment_id= → {"data":[Refund…]}
//
// Errors are {"error":"…"} with 400 (or 404 for an unknown route).

func (s *Sandbox) controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /_sandbox/keys", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.keys)
	})
	mux.HandleFunc("POST /_sandbox/payments", s.ctlCreatePayment)
	mux.HandleFunc("GET /_sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, faultList{Data: append([]Fault{}, s.Faults()...)})
	})
	mux.HandleFunc("PUT /_sandbox/faults", s.ctlSetFault)
	mux.HandleFunc("DELETE /_sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Query().Get("provider")
		if p != "" && !knownProvider(p) {
			ctlError(w, "unknown provider "+p)
			return
		}
		s.ClearFaults(p)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("PUT /_sandbox/webhooks", s.ctlSetWebhook)
	mux.HandleFunc("GET /_sandbox/webhooks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.WebhookStats())
	})
	mux.HandleFunc("GET /_sandbox/refunds", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		p := q.Get("provider")
		if !knownProvider(p) {
			ctlError(w, "provider must be yoco, checkoutcom or smartpay")
			return
		}
		writeJSON(w, http.StatusOK, refundList{Data: s.Refunds(p, q.Get("payment_id"))})
	})
}

type faultList struct {
	Data []Fault `json:"data"`
}

type refundList struct {
	Data []Refund `json:"data"`
}

type ctlErr struct {
	Error string `json:"error"`
}

func ctlError(w http.ResponseWriter, msg string) {
	writeJSON(w, http.StatusBadRequest, ctlErr{Error: msg})
}

// decodeStrict decodes one JSON object, rejecting unknown fields.
func decodeStrict(r *http.Request, v any) error {
	b, err := readBody(r)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

type ctlPaymentRequest struct {
	Provider string      `json:"provider"`
	Amount   json.Number `json:"amount"`
	Currency string      `json:"currency"`
	Mode     string      `json:"mode"`
	// Status is a Yoco checkout's status (default completed); other
	// providers refuse it.
	Status string `json:"status"`
}

type ctlPaymentResponse struct {
	PaymentID string `json:"payment_id"`
	Provider  string `json:"provider"`
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency"`
	Mode      string `json:"mode"`
	// AuthorizationID is the Checkout.com authorization charge id (the id a
	// refund must not use).
	AuthorizationID string `json:"authorization_id,omitempty"`
}

func (s *Sandbox) ctlCreatePayment(w http.ResponseWriter, r *http.Request) {
	var req ctlPaymentRequest
	if err := decodeStrict(r, &req); err != nil {
		ctlError(w, "invalid JSON: "+err.Error())
		return
	}
	if !knownProvider(req.Provider) {
		ctlError(w, "provider must be yoco, checkoutcom or smartpay")
		return
	}
	amount, err := req.Amount.Int64()
	if err != nil || amount < 1 {
		ctlError(w, "amount must be an integer ≥ 1")
		return
	}
	if !isUpperCurrency(req.Currency) {
		ctlError(w, "currency must be 3 uppercase letters")
		return
	}
	if req.Mode == "" {
		req.Mode = "test"
	}
	if req.Mode != "test" && req.Mode != "live" {
		ctlError(w, "mode must be test or live")
		return
	}
	var id string
	switch {
	case req.Status != "" && req.Provider != ProviderYoco:
		err = errors.New("status is only for yoco checkouts")
	case req.Status != "":
		id, err = s.CreateYocoCheckout(amount, req.Currency, req.Mode == "live", req.Status)
	default:
		id, err = s.CreatePayment(req.Provider, amount, req.Currency, req.Mode == "live")
	}
	if err != nil {
		ctlError(w, err.Error())
		return
	}
	out := ctlPaymentResponse{PaymentID: id, Provider: req.Provider, Amount: amount, Currency: req.Currency, Mode: req.Mode}
	if req.Provider == ProviderCheckoutCom {
		out.AuthorizationID, _ = s.CheckoutComAuthorizationID(id)
	}
	writeJSON(w, http.StatusCreated, out)
}

func (s *Sandbox) ctlSetFault(w http.ResponseWriter, r *http.Request) {
	var f Fault
	if err := decodeStrict(r, &f); err != nil {
		ctlError(w, "invalid JSON: "+err.Error())
		return
	}
	if err := s.SetFault(f); err != nil {
		ctlError(w, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, faultList{Data: s.Faults()})
}

type ctlWebhookRequest struct {
	Provider string `json:"provider"`
	URL      string `json:"url"`
}

func (s *Sandbox) ctlSetWebhook(w http.ResponseWriter, r *http.Request) {
	var req ctlWebhookRequest
	if err := decodeStrict(r, &req); err != nil {
		ctlError(w, "invalid JSON: "+err.Error())
		return
	}
	if !knownProvider(req.Provider) {
		ctlError(w, "provider must be yoco, checkoutcom or smartpay")
		return
	}
	s.SetWebhookURL(req.Provider, req.URL)
	writeJSON(w, http.StatusOK, req)
}
