// Package gateway is the refund service: it routes, applies policy, keeps
// the exactly-once flow of DESIGN.md (bind and insert, call, store the
// outcome), guards each provider account with a circuit breaker, and
// settles what is still open from webhooks and reconciliation.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.uber.org/zap"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/policy"
	"github.com/refundgate/refundgate/providers"
	"github.com/refundgate/refundgate/store"
)

// Options configure a Service.
type Options struct {
	Store  store.Store
	Logger *zap.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// RequestBudget bounds all provider work of one API request (default 30s).
	RequestBudget time.Duration
	// Metrics, when set, counts provider calls and outcomes.
	Metrics *Metrics
}

// Service is the refund service.
type Service struct {
	store   store.Store
	snap    atomic.Pointer[Snapshot]
	log     *zap.Logger
	now     func() time.Time
	ids     *idSource
	budget  time.Duration
	metrics *Metrics

	mu       sync.Mutex
	inflight map[string]struct{}
	syncing  map[string]struct{}
	// answered caches answered idempotency records, which never change,
	// so replays cost no store read.
	answered *lru.Cache[string, *store.IdempotencyRecord]
	// payments caches payment facts, which never change once kept.
	payments *lru.Cache[string, *store.Payment]
}

// answeredCacheSize bounds the replay cache (a few KiB an entry at most).
const answeredCacheSize = 16384

// New returns a Service on snap.
func New(snap *Snapshot, opts Options) *Service {
	s := &Service{store: opts.Store, log: opts.Logger, now: opts.Now, ids: newIDSource(), budget: opts.RequestBudget,
		metrics: opts.Metrics, inflight: map[string]struct{}{}, syncing: map[string]struct{}{}}
	s.answered, _ = lru.New[string, *store.IdempotencyRecord](answeredCacheSize)
	s.payments, _ = lru.New[string, *store.Payment](answeredCacheSize)
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.budget <= 0 {
		s.budget = 30 * time.Second
	}
	s.snap.Store(snap)
	return s
}

// clock is the time in UTC at the store's precision (microseconds), so a
// refund reads back exactly as it was answered.
func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// Snapshot returns the configuration in force.
func (s *Service) Snapshot() *Snapshot { return s.snap.Load() }

// Swap puts a new configuration in force; requests in flight finish on
// the one they started with.
func (s *Service) Swap(snap *Snapshot) { s.snap.Store(snap) }

// Store returns the service's store.
func (s *Service) Store() store.Store { return s.store }

// CreateInput is a validated refund request.
type CreateInput struct {
	PaymentID   string
	Provider    string
	Amount      *int64
	Currency    string
	Reason      normalize.Reason
	Description *string
	Reference   *string
	Metadata    map[string]string
	LineItems   []normalize.LineItem
}

// lock marks a merchant's key as running; false if it already is.
func (s *Service) lock(set map[string]struct{}, k string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, busy := set[k]; busy {
		return false
	}
	set[k] = struct{}{}
	return true
}

func (s *Service) unlock(set map[string]struct{}, k string) {
	s.mu.Lock()
	delete(set, k)
	s.mu.Unlock()
}

// Replay returns the answer Create would give merchant m's request under
// key, identified by hash, when this process already holds that key's
// stored answer and the hash matches it: the first answer, replayed. It
// reports false otherwise, and the request goes through Create. A match
// means the body is byte for byte the first request's, which was decoded
// and validated then, so the API can answer it before decoding it again.
func (s *Service) Replay(m *Merchant, key, hash string) (Answer, bool) {
	rec, ok := s.answered.Get(answeredKey(m, key))
	if !ok || rec.RequestHash != hash || rec.Answer == nil {
		return Answer{}, false
	}
	return answerOf(rec.Answer), true
}

// answeredKey is merchant m's idempotency key as the answered cache and the
// in-flight set know it: keys are per merchant.
func answeredKey(m *Merchant, key string) string { return m.ID + "\x00" + key }

// Create runs POST /v1/refunds for merchant m under idempotency key, whose
// request is identified by hash. It returns the answer to send.
func (s *Service) Create(ctx context.Context, m *Merchant, key, hash, requestID string, in *CreateInput) Answer {
	snap := s.snap.Load()
	lk := answeredKey(m, key)
	if rec, ok := s.answered.Get(lk); ok {
		return s.replay(ctx, snap, m, rec, hash, requestID)
	}
	// Provider work gets its own budget: a caller who hangs up must not
	// cut a refund in half.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.budget)
	defer cancel()
	if !s.lock(s.inflight, lk) {
		// A request with this key is running here, or has just finished
		// and its answer is stored.
		if rec, err := s.store.GetIdempotency(ctx, m.ID, key); err == nil && rec.Answer != nil {
			s.answered.Add(lk, rec)
			return s.replay(ctx, snap, m, rec, hash, requestID)
		}
		return ProblemOf(normalize.Errorf(normalize.CodeIdempotencyKeyInUse,
			"a request with this Idempotency-Key is still running; retry when it has finished"), requestID)
	}
	defer s.unlock(s.inflight, lk)

	// A key bound before (by an earlier process, or with an answer this
	// process no longer caches) is found by store.Create, which checks the
	// key first; a new key costs no read. Until then, a refusal is checked
	// against the store before it is given, so that a replay never gets one
	// its first request did not (the ledger and the refund window move).
	refuse := func(err error) Answer {
		rec, gerr := s.store.GetIdempotency(ctx, m.ID, key)
		switch {
		case gerr == nil:
			if rec.Answer != nil {
				s.answered.Add(lk, rec)
			}
			return s.replay(ctx, snap, m, rec, hash, requestID)
		case !errors.Is(gerr, store.ErrNotFound):
			return s.internal(gerr, requestID, "read idempotency key")
		}
		return s.problem(err, requestID)
	}
	// Facts of a payment learned for this request are kept whatever becomes
	// of it, so that the next try reads them instead of asking the provider;
	// a refund that is created keeps them itself (CreateParams.Payment).
	pl := &plan{}
	defer func() {
		if pl.fresh {
			s.keepPayment(ctx, pl.payment)
		}
	}()
	if err := s.prepare(ctx, snap, m, in, pl); err != nil {
		return refuse(err)
	}
	r, acct, p := pl.refund, pl.acct, pl.payment
	dec, err := m.Policy.Decide(policy.Input{Amount: r.Amount, Currency: r.Currency, CapturedAt: p.CapturedAt, Now: s.now()})
	if err != nil {
		// A refund over the refundable rest says so first, whatever policy
		// says of it.
		if t, terr := s.store.Totals(ctx, acct.Name, r.PaymentID); terr == nil && r.Amount > p.Limit()-t.Reserved() {
			if rest := p.Limit() - t.Reserved(); rest <= 0 {
				err = fullyRefunded(r.PaymentID)
			} else {
				err = exceeds(r.Amount, rest, r.Currency)
			}
		}
		return refuse(err)
	}
	hold := dec.Hold
	if hold {
		r.Status = normalize.StatusRequiresApproval
	} else {
		next := r.CreatedAt.Add(acct.settleAfter())
		r.NextSyncAt = &next
	}
	cp := store.CreateParams{
		Refund: r, Key: store.IdempotencyRecord{MerchantID: m.ID, Key: key, RequestHash: hash, CreatedAt: r.CreatedAt},
		Limit: p.Limit(), TakeRest: in.Amount == nil,
	}
	if pl.fresh {
		// A payment seen for the first time is kept with its first refund.
		cp.Payment = p
	}
	existing, err := s.store.Create(ctx, cp)
	if err == nil && existing == nil {
		pl.fresh = false // kept with the refund
	}
	if err != nil {
		return s.problem(ledgerProblem(err, p, r.Amount, r.Currency), requestID)
	}
	if existing != nil {
		if existing.Answer != nil {
			s.answered.Add(lk, existing)
		}
		return s.replay(ctx, snap, m, existing, hash, requestID)
	}
	if hold {
		a := RefundAnswer(r, http.StatusAccepted)
		if err := s.store.UpdateRefund(ctx, r, r.Status, a.stored()); err != nil {
			s.log.Error("store the answer of a held refund", zap.String("refund_id", r.ID), zap.Error(err))
		}
		return a
	}
	// The in-process guard: no sync or reconcile of this refund while its
	// first call may still be running.
	s.lock(s.syncing, r.ID)
	defer s.unlock(s.syncing, r.ID)
	return s.send(ctx, acct, r, requestID, true, pl.full)
}

// plan is a refund ready for phase 1: the refund to insert, its account,
// the payment's facts (fresh: learned from the provider just now, not kept
// yet), and whether it refunds the whole rest.
type plan struct {
	refund      *normalize.Refund
	acct        *Account
	payment     *store.Payment
	full, fresh bool
}

// prepare routes, learns the payment and builds the refund to insert,
// filling pl as it goes: a refusal after the payment was learned leaves the
// payment in pl.
func (s *Service) prepare(ctx context.Context, snap *Snapshot, m *Merchant, in *CreateInput, pl *plan) error {
	acct, err := s.account(snap, m, in.Provider, in.PaymentID, in.Currency)
	if err != nil {
		return err
	}
	if acct.breaker.open() {
		return unavailable(acct)
	}
	p, fresh, err := s.learnPayment(ctx, acct, in.PaymentID, in.Currency)
	if err != nil {
		return err
	}
	pl.acct, pl.payment, pl.fresh = acct, p, fresh
	pl.refund, pl.full, err = s.build(ctx, m, in, acct, p)
	return err
}

// keepPayment keeps facts learned for a refund that was not created.
func (s *Service) keepPayment(ctx context.Context, p *store.Payment) {
	if err := s.store.PutPayment(ctx, p); err != nil {
		s.log.Warn("keep a payment's facts", zap.String("provider", p.Provider), zap.String("payment_id", p.PaymentID), zap.Error(err))
	}
}

// build checks a request against the payment's facts and builds the refund;
// full says it refunds the whole rest.
func (s *Service) build(ctx context.Context, m *Merchant, in *CreateInput, acct *Account, p *store.Payment) (*normalize.Refund, bool, error) {
	if in.Currency != "" && in.Currency != p.Currency {
		return nil, false, normalize.FieldErr(normalize.CodeCurrencyMismatch, "currency", "payment_currency",
			fmt.Sprintf("currency %s does not match the payment's currency %s", in.Currency, p.Currency))
	}
	if p.Livemode != acct.Caps.Livemode {
		return nil, false, normalize.FieldErr(normalize.CodeModeMismatch, "payment_id", "livemode",
			fmt.Sprintf("payment %s is %s but account %s uses a %s key", in.PaymentID, modeName(p.Livemode), acct.Name, modeName(acct.Caps.Livemode)))
	}
	amount, rest := int64(0), int64(-1)
	if in.Amount != nil {
		amount = *in.Amount
	}
	// A partial-capable account with an explicit amount needs no ledger
	// read here: Create checks the ledger atomically. Otherwise the rest
	// decides the amount, the full flag and the partial rule.
	if in.Amount == nil || !acct.Caps.Partial {
		totals, err := s.store.Totals(ctx, acct.Name, in.PaymentID)
		if err != nil {
			return nil, false, err
		}
		rest = p.Limit() - totals.Reserved()
		if rest <= 0 {
			return nil, false, fullyRefunded(in.PaymentID)
		}
		if in.Amount == nil {
			amount = rest
		}
		if amount > rest {
			return nil, false, exceeds(amount, rest, p.Currency)
		}
	}
	now := s.clock()
	r := &normalize.Refund{
		ID: s.ids.next(now), Object: "refund", MerchantID: m.ID, Provider: acct.Name, ProviderType: acct.Type,
		PaymentID: in.PaymentID, Amount: amount, Currency: p.Currency, Status: normalize.StatusPending,
		Reason: in.Reason, Description: in.Description, Reference: in.Reference, Metadata: in.Metadata,
		LineItems: in.LineItems, Livemode: acct.Caps.Livemode, CreatedAt: now, UpdatedAt: now,
	}
	req := providerRequest(r, amount == rest)
	if !req.Full && !acct.Caps.Partial {
		return nil, false, normalize.FieldErr(normalize.CodePartialRefundUnsupported, "amount", "partial_unsupported",
			fmt.Sprintf("account %s (%s) refunds only the whole payment: omit amount or send %d", acct.Name, acct.Type, rest))
	}
	if err := providers.CheckRequest(acct.Type, acct.Caps, req); err != nil {
		return nil, false, err
	}
	return r, req.Full, nil
}

// account resolves the account a request goes to.
func (s *Service) account(snap *Snapshot, m *Merchant, name, paymentID, currency string) (*Account, error) {
	if name == "" {
		var ok bool
		name, ok = snap.route(m, paymentID, currency)
		if !ok {
			return nil, normalize.FieldErr(normalize.CodeNoRoute, "provider", "route",
				fmt.Sprintf("no route matches payment %s; name a provider or add a route", paymentID))
		}
	}
	a := snap.accounts[name]
	if a == nil || !m.May(name) {
		return nil, normalize.FieldErr(normalize.CodeUnknownProvider, "provider", "merchant_providers",
			fmt.Sprintf("provider %q is not one of this merchant's accounts", name))
	}
	return a, nil
}

// payment returns what the store knows of a payment, asking the provider
// and keeping its answer the first time.
func (s *Service) payment(ctx context.Context, acct *Account, paymentID, currency string) (*store.Payment, error) {
	p, fresh, err := s.learnPayment(ctx, acct, paymentID, currency)
	if err != nil || !fresh {
		return p, err
	}
	if err := s.store.PutPayment(ctx, p); err != nil {
		return nil, err
	}
	return s.store.GetPayment(ctx, acct.Name, paymentID)
}

// learnPayment returns what the store knows of a payment or, the first
// time, what the provider says of it: then fresh is set, and the facts are
// not kept yet.
func (s *Service) learnPayment(ctx context.Context, acct *Account, paymentID, currency string) (p *store.Payment, fresh bool, err error) {
	ck := acct.Name + "\x00" + paymentID
	if p, ok := s.payments.Get(ck); ok {
		return p, false, nil
	}
	p, err = s.store.GetPayment(ctx, acct.Name, paymentID)
	if err == nil {
		s.payments.Add(ck, p)
		return p, false, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, false, err
	}
	st, err := s.lookup(ctx, acct, normalize.LookupRef{PaymentID: paymentID, Currency: currency})
	if err != nil {
		return nil, false, s.providerProblem(acct, err, "")
	}
	totals, err := s.store.Totals(ctx, acct.Name, paymentID)
	if err != nil {
		return nil, false, err
	}
	p = &store.Payment{Provider: acct.Name, PaymentID: paymentID, Currency: st.Currency, Captured: st.CapturedAmount,
		Livemode: st.Livemode, CapturedAt: st.CapturedAt, FetchedAt: s.clock()}
	if totals.Reserved() == 0 {
		p.ExternalRefunded = st.RefundedAmount
	}
	return p, true, nil
}

// lookup asks the provider through the account's breaker.
func (s *Service) lookup(ctx context.Context, acct *Account, ref normalize.LookupRef) (*normalize.ProviderState, error) {
	ctx, cancel := context.WithTimeout(ctx, acct.Timeout)
	defer cancel()
	var took time.Duration
	v, err := acct.breaker.execute(timed(&took, func() (any, error) { return acct.Provider.Lookup(ctx, ref) }))
	s.metrics.providerCall(acct.Name, "lookup", err, took)
	if err != nil {
		return nil, err
	}
	return v.(*normalize.ProviderState), nil
}

// providerRequest is what the adapter is asked to send for r.
func providerRequest(r *normalize.Refund, full bool) *normalize.RefundRequest {
	req := &normalize.RefundRequest{RefundID: r.ID, PaymentID: r.PaymentID, Amount: r.Amount, Full: full,
		Currency: r.Currency, Reason: r.Reason, Metadata: r.Metadata, LineItems: r.LineItems, Livemode: r.Livemode}
	if r.Description != nil {
		req.Description = *r.Description
	}
	if r.Reference != nil {
		req.Reference = *r.Reference
	}
	return req
}

func (a *Account) settleAfter() time.Duration { return a.Timeout + 5*time.Second }

func modeName(live bool) string {
	if live {
		return "live"
	}
	return "test"
}

func unavailable(a *Account) error {
	return &normalize.Error{Code: normalize.CodeProviderUnavailable, Provider: a.Name, RetryAfterSeconds: a.breaker.retryAfter(),
		Message: fmt.Sprintf("provider account %s is failing; its circuit breaker is open, nothing was sent", a.Name)}
}

func fullyRefunded(paymentID string) error {
	return normalize.FieldErr(normalize.CodePaymentFullyRefunded, "payment_id", "refundable",
		fmt.Sprintf("payment %s is already fully refunded (or the rest is held by pending refunds)", paymentID))
}

func exceeds(amount, rest int64, currency string) error {
	return normalize.FieldErr(normalize.CodeAmountExceedsRefundable, "amount", "refundable",
		fmt.Sprintf("amount %d is more than the refundable %d %s", amount, rest, currency))
}

func ledgerProblem(err error, p *store.Payment, amount int64, currency string) error {
	var le *store.LedgerError
	if !errors.As(err, &le) {
		return err
	}
	rest := le.Limit - le.Reserved
	if rest <= 0 || errors.Is(err, store.ErrFullyRefunded) {
		return fullyRefunded(p.PaymentID)
	}
	return exceeds(amount, rest, currency)
}

// problem renders err, logging it when it is not one of the catalogue's.
func (s *Service) problem(err error, requestID string) Answer {
	var ne *normalize.Error
	if !errors.As(err, &ne) {
		return s.internal(err, requestID, "create refund")
	}
	return ProblemOf(err, requestID)
}

func (s *Service) internal(err error, requestID, what string) Answer {
	s.log.Error(what, zap.String("request_id", requestID), zap.Error(err))
	return ProblemOf(err, requestID)
}
