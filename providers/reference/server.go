package reference

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Server is the in-memory reference payment provider the adapter talks to:
// payments with captured amounts, partial and repeated refunds, and
// idempotency keys. It stands in for a real provider in tests and in
// `serve --sandbox` until faithful simulators exist.
type Server struct {
	key string

	mu       sync.Mutex
	seq      int
	payments map[string]*payment
	byKey    map[string][]byte // idempotency key → first answer body
}

type payment struct {
	ID       string    `json:"id"`
	Amount   int64     `json:"amount"`
	Currency string    `json:"currency"`
	Refunded int64     `json:"refunded"`
	Created  time.Time `json:"created"`
	Refunds  []*refund `json:"refunds"`
}

type refund struct {
	ID             string            `json:"id"`
	PaymentID      string            `json:"payment_id"`
	Amount         int64             `json:"amount"`
	Currency       string            `json:"currency"`
	Status         string            `json:"status"`
	Reference      string            `json:"reference,omitempty"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	IdempotencyKey string            `json:"-"`
}

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// NewServer returns a reference provider that accepts secret key.
func NewServer(key string) *Server {
	return &Server{key: key, payments: map[string]*payment{}, byKey: map[string][]byte{}}
}

// CreatePayment records a captured payment and returns its id.
func (s *Server) CreatePayment(amount int64, currency string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	id := fmt.Sprintf("pay_ref_%06d", s.seq)
	s.payments[id] = &payment{ID: id, Amount: amount, Currency: currency, Created: time.Now().UTC()}
	return id
}

// RefundAmounts returns the amounts refunded on a payment, in order.
func (s *Server) RefundAmounts(paymentID string) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.payments[paymentID]
	if p == nil {
		return nil
	}
	out := make([]int64, len(p.Refunds))
	for i, r := range p.Refunds {
		out[i] = r.Amount
	}
	return out
}

// ServeHTTP serves POST /payments/{id}/refunds and GET /payments/{id}.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+s.key {
		writeErr(w, http.StatusUnauthorized, "unauthorized", "invalid API key")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/payments/")
	if !ok {
		writeErr(w, http.StatusNotFound, "route_not_found", "no such route")
		return
	}
	id, action, _ := strings.Cut(rest, "/")
	switch {
	case r.Method == http.MethodGet && action == "":
		s.get(w, id)
	case r.Method == http.MethodPost && action == "refunds":
		s.refund(w, r, id)
	default:
		writeErr(w, http.StatusNotFound, "route_not_found", "no such route")
	}
}

func (s *Server) get(w http.ResponseWriter, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.payments[id]
	if p == nil {
		writeErr(w, http.StatusNotFound, "payment_not_found", "no such payment")
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) refund(w http.ResponseWriter, r *http.Request, id string) {
	var in struct {
		Amount    *int64            `json:"amount"`
		Reason    string            `json:"reason"`
		Reference string            `json:"reference"`
		Metadata  map[string]string `json:"metadata"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeErr(w, http.StatusBadRequest, "invalid_request", "body is not JSON")
		return
	}
	key := r.Header.Get("Idempotency-Key")
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.byKey[key]; ok && key != "" {
		w.Header().Set("Idempotent-Replayed", "true")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		w.Write(b)
		return
	}
	p := s.payments[id]
	if p == nil {
		writeErr(w, http.StatusNotFound, "payment_not_found", "no such payment")
		return
	}
	rest := p.Amount - p.Refunded
	amount := rest
	if in.Amount != nil {
		amount = *in.Amount
	}
	switch {
	case rest == 0:
		writeErr(w, http.StatusUnprocessableEntity, "already_refunded", "payment is fully refunded")
		return
	case amount < 1 || amount > rest:
		writeErr(w, http.StatusUnprocessableEntity, "amount_too_large", "amount exceeds the refundable rest")
		return
	}
	s.seq++
	rf := &refund{ID: fmt.Sprintf("ref_%06d", s.seq), PaymentID: id, Amount: amount, Currency: p.Currency,
		Status: "succeeded", Reference: in.Reference, Metadata: in.Metadata, IdempotencyKey: key}
	p.Refunds = append(p.Refunds, rf)
	p.Refunded += amount
	b, _ := json.Marshal(rf)
	if key != "" {
		s.byKey[key] = b
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	w.Write(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	var e apiError
	e.Error.Code, e.Error.Message = code, msg
	writeJSON(w, status, e)
}
