package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/providers"
	"github.com/refundgate/refundgate/store"
)

// attentionAfter is how long a refund may stay pending before it is
// flagged for an operator.
const attentionAfter = 72 * time.Hour

// replay answers a request whose key is already bound.
func (s *Service) replay(ctx context.Context, snap *Snapshot, m *Merchant, rec *store.IdempotencyRecord, hash, requestID string) Answer {
	if rec.RequestHash != hash {
		return ProblemOf(normalize.FieldErr(normalize.CodeIdempotencyKeyReused, "Idempotency-Key", "same_request",
			"this Idempotency-Key was used with another request; use a new key for a new refund"), requestID)
	}
	if rec.Answer != nil {
		return answerOf(rec.Answer)
	}
	// Bound but unanswered: the first request died between its intent and
	// its outcome, or runs in another process. Settle it, then answer with
	// the refund as it now stands.
	r, err := s.store.GetRefund(ctx, m.ID, rec.RefundID)
	if err != nil {
		return s.internal(err, requestID, "read refund of idempotency key")
	}
	if r.Status == normalize.StatusPending {
		if settled, serr := s.settle(ctx, r, s.clock(), false); serr == nil {
			r = settled
		}
	}
	a := s.answerFor(snap.accounts[r.Provider], r, requestID)
	a.Replayed = true
	return a
}

// Sync asks the provider about a merchant's refund now and returns it.
func (s *Service) Sync(ctx context.Context, m *Merchant, id string) (*normalize.Refund, error) {
	r, err := s.store.GetRefund(ctx, m.ID, id)
	if err != nil {
		return nil, notFound(err, id)
	}
	if r.Status != normalize.StatusPending {
		return r, nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.budget)
	defer cancel()
	return s.settle(ctx, r, s.clock(), true)
}

// settle brings a pending refund up to date with its provider: Lookup, and
// when the provider provably has no such refund and no call can still be in
// flight, send it again under the same key or track id. It leaves alone a
// refund this process is sending (Create and Approve hold the syncing
// guard while they call). force shortens the wait for a call of another
// process, or of one that died, to the account's timeout (only for an
// explicit sync).
func (s *Service) settle(ctx context.Context, r *normalize.Refund, now time.Time, force bool) (*normalize.Refund, error) {
	if !s.lock(s.syncing, r.ID) {
		return r, nil
	}
	defer s.unlock(s.syncing, r.ID)
	acct := s.snap.Load().accounts[r.Provider]
	if acct == nil {
		return r, fmt.Errorf("refund %s: account %s is no longer configured", r.ID, r.Provider)
	}
	ref := normalize.LookupRef{PaymentID: r.PaymentID, RefundID: r.ID, Currency: r.Currency, Amount: r.Amount}
	if r.ProviderRefundID != nil {
		ref.ProviderRefundID = *r.ProviderRefundID
	}
	from := r.Status
	st, err := s.lookup(ctx, acct, ref)
	// Storing what the lookup said must not fail because it spent the budget.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	if err != nil {
		s.log.Warn("reconcile: lookup failed", zap.String("refund_id", r.ID), zap.String("provider", acct.Name), zap.Error(err))
		return r, s.reschedule(sctx, r, acct, now)
	}
	if st.Refund != nil {
		applyProvider(r, st.Refund, now)
		if !r.Status.Terminal() {
			s.scheduleNext(r, acct, now)
		}
		return s.commit(sctx, r, from)
	}
	// The provider has no such refund. A provider that deduplicates by our
	// key can always be asked again. Otherwise resend only when no earlier
	// call can still land: the last one ended longer ago than the account's
	// timeout (plus a margin, unless an operator asked for this sync).
	wait := acct.settleAfter()
	if force {
		wait = acct.Timeout
	}
	if !acct.Caps.Idempotent && now.Sub(r.UpdatedAt) < wait {
		return r, s.reschedule(sctx, r, acct, now)
	}
	s.log.Info("reconcile: provider has no such refund; sending it", zap.String("refund_id", r.ID), zap.String("provider", acct.Name))
	a := s.send(ctx, acct, r, "", false, s.isFull(ctx, acct, r))
	if a.Refund != nil {
		return a.Refund, nil
	}
	return s.store.GetRefund(sctx, "", r.ID)
}

// commit stores a settled state, storing the key's answer once terminal.
func (s *Service) commit(ctx context.Context, r *normalize.Refund, from normalize.Status) (*normalize.Refund, error) {
	var ans *store.Answer
	if r.Status.Terminal() {
		ans = s.answerFor(s.snap.Load().accounts[r.Provider], r, "").stored()
	}
	if err := s.store.UpdateRefund(ctx, r, from, ans); err != nil {
		if errors.Is(err, store.ErrStateChanged) {
			return s.store.GetRefund(ctx, "", r.ID)
		}
		return r, err
	}
	if r.Status.Terminal() {
		s.log.Info("refund settled", zap.String("refund_id", r.ID), zap.String("status", string(r.Status)))
	}
	return r, nil
}

// reschedule pushes the next look back and stores that.
func (s *Service) reschedule(ctx context.Context, r *normalize.Refund, acct *Account, now time.Time) error {
	s.scheduleNext(r, acct, now)
	_, err := s.commit(ctx, r, r.Status)
	return err
}

// scheduleNext sets the reconciler's next look at a still-open refund,
// further off each time, and flags one pending too long.
func (s *Service) scheduleNext(r *normalize.Refund, acct *Account, now time.Time) {
	r.Attempts++
	next := now.Add(backoff(r.Attempts, acct))
	r.NextSyncAt = &next
	if !r.NeedsAttention && now.Sub(r.CreatedAt) > attentionAfter {
		r.NeedsAttention = true
		s.log.Error("refund still pending after 72 hours: needs attention", zap.String("refund_id", r.ID),
			zap.String("provider", r.Provider), zap.String("payment_id", r.PaymentID))
	}
}

// Reconcile settles every due pending refund once; it returns how many it
// looked at.
func (s *Service) Reconcile(ctx context.Context) (int, error) {
	return s.ReconcileAt(ctx, s.clock())
}

// ReconcileAt is Reconcile as if the time were now.
func (s *Service) ReconcileAt(ctx context.Context, now time.Time) (int, error) {
	due, err := s.store.DuePending(ctx, now, 100)
	if err != nil {
		return 0, err
	}
	for _, r := range due {
		if _, err := s.settle(ctx, r, now, false); err != nil {
			s.log.Warn("reconcile", zap.String("refund_id", r.ID), zap.Error(err))
		}
	}
	return len(due), nil
}

// keyRetention is how long idempotency keys are kept: API.md promises at
// least 72 hours; a day more covers clock skew and late retries.
const keyRetention = 96 * time.Hour

// PurgeKeys deletes the idempotency keys older than keyRetention and
// returns how many went.
func (s *Service) PurgeKeys(ctx context.Context) (int64, error) {
	return s.store.PurgeIdempotency(ctx, s.now().Add(-keyRetention))
}

// RunReconciler reconciles at start and then every interval until ctx ends.
func (s *Service) RunReconciler(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for {
			n, err := s.Reconcile(ctx)
			if err != nil && ctx.Err() == nil {
				s.log.Error("reconciler", zap.Error(err))
			}
			if n < 100 || ctx.Err() != nil {
				break
			}
		}
		if _, err := s.PurgeKeys(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("purge idempotency keys", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Approve sends a refund held for approval.
func (s *Service) Approve(ctx context.Context, m *Merchant, id, requestID string) Answer {
	r, err := s.store.GetRefund(ctx, m.ID, id)
	if err != nil {
		return ProblemOf(notFound(err, id), requestID)
	}
	if r.Status != normalize.StatusRequiresApproval {
		return ProblemOf(invalidState(r, "approve"), requestID)
	}
	acct := s.snap.Load().accounts[r.Provider]
	if acct == nil {
		return ProblemOf(normalize.Errorf(normalize.CodeUnknownProvider, "account %s is no longer configured", r.Provider), requestID)
	}
	if acct.breaker.open() {
		return ProblemOf(unavailable(acct), requestID)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.budget)
	defer cancel()
	if !s.lock(s.syncing, r.ID) {
		return ProblemOf(normalize.Errorf(normalize.CodeInvalidState, "refund %s is being worked on; fetch it again", id), requestID)
	}
	defer s.unlock(s.syncing, r.ID)
	now := s.clock()
	next := now.Add(acct.settleAfter())
	r.Status, r.UpdatedAt, r.NextSyncAt = normalize.StatusPending, now, &next
	if err := s.store.UpdateRefund(ctx, r, normalize.StatusRequiresApproval, nil); err != nil {
		if errors.Is(err, store.ErrStateChanged) {
			return ProblemOf(normalize.Errorf(normalize.CodeInvalidState, "refund %s changed state; fetch it again", id), requestID)
		}
		return s.internal(err, requestID, "approve refund")
	}
	a := s.send(ctx, acct, r, requestID, false, s.isFull(ctx, acct, r))
	if a.Status == http.StatusCreated || a.Status == http.StatusAccepted {
		a.Status = http.StatusOK
	}
	return a
}

// Cancel cancels a refund held for approval.
func (s *Service) Cancel(ctx context.Context, m *Merchant, id string) (*normalize.Refund, error) {
	r, err := s.store.GetRefund(ctx, m.ID, id)
	if err != nil {
		return nil, notFound(err, id)
	}
	if r.Status != normalize.StatusRequiresApproval {
		return nil, invalidState(r, "cancel")
	}
	r.Status, r.UpdatedAt, r.NextSyncAt = normalize.StatusCanceled, s.clock(), nil
	if _, err := s.commit(ctx, r, normalize.StatusRequiresApproval); err != nil {
		return nil, err
	}
	return s.store.GetRefund(ctx, m.ID, id)
}

// Get returns a merchant's refund.
func (s *Service) Get(ctx context.Context, m *Merchant, id string) (*normalize.Refund, error) {
	r, err := s.store.GetRefund(ctx, m.ID, id)
	if err != nil {
		return nil, notFound(err, id)
	}
	return r, nil
}

func notFound(err error, id string) error {
	if errors.Is(err, store.ErrNotFound) {
		return normalize.Errorf(normalize.CodeNotFound, "no refund %s", id)
	}
	return err
}

func invalidState(r *normalize.Refund, action string) error {
	return normalize.Errorf(normalize.CodeInvalidState, "refund %s is %s; only a requires_approval refund can be %sd", r.ID, r.Status, action)
}

// Webhook takes a provider webhook for account name: verify, drop
// duplicates, apply each event to its refund.
func (s *Service) Webhook(ctx context.Context, name string, header http.Header, body []byte) error {
	acct := s.snap.Load().accounts[name]
	if acct == nil || acct.Verifier == nil {
		return normalize.Errorf(normalize.CodeNotFound, "no webhook endpoint for provider %s", name)
	}
	if err := acct.Verifier.Verify(header, body, s.now()); err != nil {
		s.log.Warn("webhook signature refused", zap.String("provider", name), zap.Error(err))
		return normalize.Errorf(normalize.CodeUnauthenticated, "webhook signature does not verify")
	}
	events, err := acct.Verifier.Parse(header, body)
	if err != nil {
		return normalize.Wrap(err, normalize.CodeValidationFailed, "webhook body is not an event this provider sends")
	}
	for _, ev := range events {
		if err := s.applyEvent(ctx, acct, ev); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) applyEvent(ctx context.Context, acct *Account, ev normalize.WebhookEvent) error {
	var r *normalize.Refund
	var err error
	switch {
	case ev.RefundID != "":
		r, err = s.store.GetRefund(ctx, "", ev.RefundID)
		if err == nil && r.Provider != acct.Name {
			err = store.ErrNotFound
		}
	case ev.ProviderRefundID != "":
		r, err = s.store.FindByProviderRefund(ctx, acct.Name, ev.ProviderRefundID)
	default:
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) && ev.RefundID == "" && ev.PaymentID != "" && !acct.Caps.Multiple {
		// The provider's answer with its refund id never reached us (or it
		// names none): an account with one refund per payment names the
		// refund by its payment.
		r, err = s.onlyRefundOf(ctx, acct, ev.PaymentID)
	}
	if errors.Is(err, store.ErrNotFound) {
		s.log.Info("webhook for a refund refundgate does not hold", zap.String("provider", acct.Name), zap.String("event_id", ev.ID))
		return nil
	}
	if err != nil {
		return err
	}
	if ev.ID != "" {
		seen, err := s.store.MarkEvent(ctx, acct.Name, ev.ID, s.clock())
		if err != nil || seen {
			return err
		}
	}
	if ev.Status == "" || r.Status.Terminal() {
		return nil
	}
	from := r.Status
	pr := &normalize.ProviderRefund{ProviderRefundID: ev.ProviderRefundID, Status: ev.Status, ProviderStatus: ev.ProviderStatus, Failure: ev.Failure}
	if !applyProvider(r, pr, s.clock()) {
		return nil
	}
	_, err = s.commit(ctx, r, from)
	return err
}

// onlyRefundOf returns the refund of a payment on an account that takes one
// refund per payment (a Yoco checkout without partial refunds), for
// webhooks that name only the payment. A failed refund leaves room for
// another, so the one still open (or else the newest) is the one meant.
func (s *Service) onlyRefundOf(ctx context.Context, acct *Account, paymentID string) (*normalize.Refund, error) {
	var newest *normalize.Refund
	for _, m := range s.snap.Load().merchants {
		if !m.May(acct.Name) {
			continue
		}
		list, _, err := s.store.ListRefunds(ctx, store.ListQuery{MerchantID: m.ID, PaymentID: paymentID, Provider: acct.Name, Limit: 10})
		if err != nil {
			return nil, err
		}
		for _, r := range list {
			if !r.Status.Terminal() {
				return r, nil
			}
			if newest == nil || r.ID > newest.ID {
				newest = r
			}
		}
	}
	if newest == nil {
		return nil, store.ErrNotFound
	}
	return newest, nil
}

// Refundable is the dry run of GET /v1/payments/{id}/refundable.
type Refundable struct {
	PaymentID        string           `json:"payment_id"`
	Provider         string           `json:"provider"`
	CapturedAmount   int64            `json:"captured_amount"`
	RefundedAmount   int64            `json:"refunded_amount"`
	PendingAmount    int64            `json:"pending_amount"`
	RefundableAmount int64            `json:"refundable_amount"`
	Currency         string           `json:"currency"`
	PartialAllowed   bool             `json:"partial_allowed"`
	BlockedBy        []normalize.Code `json:"blocked_by"`
}

// Refundable says how much of a payment may still be refunded, and what
// would block a refund now.
func (s *Service) Refundable(ctx context.Context, m *Merchant, paymentID, provider string) (*Refundable, error) {
	snap := s.snap.Load()
	acct, err := s.account(snap, m, provider, paymentID, "")
	if err != nil {
		return nil, err
	}
	p, err := s.payment(ctx, acct, paymentID, "")
	if err != nil {
		return nil, err
	}
	t, err := s.store.Totals(ctx, acct.Name, paymentID)
	if err != nil {
		return nil, err
	}
	out := &Refundable{PaymentID: paymentID, Provider: acct.Name, CapturedAmount: p.Captured,
		RefundedAmount: p.ExternalRefunded + t.Succeeded, PendingAmount: t.Pending + t.Held,
		RefundableAmount: max(p.Limit()-t.Reserved(), 0), Currency: p.Currency,
		PartialAllowed: acct.Caps.Partial && (acct.Caps.Multiple || t.Reserved() == 0), BlockedBy: []normalize.Code{}}
	if out.RefundableAmount == 0 {
		out.BlockedBy = append(out.BlockedBy, normalize.CodePaymentFullyRefunded)
	}
	if p.Livemode != acct.Caps.Livemode {
		out.BlockedBy = append(out.BlockedBy, normalize.CodeModeMismatch)
	}
	if acct.breaker.open() {
		out.BlockedBy = append(out.BlockedBy, normalize.CodeProviderUnavailable)
	}
	out.BlockedBy = append(out.BlockedBy, m.Policy.Blocked(p.CapturedAt, s.now())...)
	return out, nil
}

// ProviderOutcome is exported for metrics labels.
func ProviderOutcome(err error) string {
	if err == nil {
		return "ok"
	}
	if rejected(err) {
		return "rejected"
	}
	return providers.OutcomeOf(err).String()
}
