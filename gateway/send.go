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

// maxAttempts bounds the provider calls one request makes.
const maxAttempts = 3

// storeTimeout bounds storing the outcome of a provider call.
const storeTimeout = 10 * time.Second

// shouldRetry decides, in one place, whether a failed refund call may be
// sent again now, and says why. Only what provably did not reach the
// provider, or what the provider deduplicates by our key, is resent.
func shouldRetry(err error, caps providers.Capabilities, attempt int) (bool, string) {
	if attempt >= maxAttempts {
		return false, "attempts exhausted"
	}
	if rejected(err) {
		return false, "circuit breaker open"
	}
	var local *normalize.Error
	if errors.As(err, &local) {
		return false, "the adapter refused it before sending; it would again"
	}
	switch providers.OutcomeOf(err) {
	case providers.OutcomeNotSent:
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return false, "request budget spent"
		}
		return true, "the request never left"
	case providers.OutcomeRetryLater:
		return true, "the provider applied nothing and asked to retry"
	case providers.OutcomeUnknown:
		if caps.Idempotent && !errors.Is(err, context.DeadlineExceeded) {
			return true, "the provider deduplicates resends by idempotency key"
		}
		return false, "the outcome is unknown and the provider has no idempotency: reconcile first"
	}
	return false, "the provider declined"
}

// retryDelay is the pause before attempt n+1.
func retryDelay(err error, attempt int) time.Duration {
	var pe *providers.Error
	if errors.As(err, &pe) && pe.RetryAfter > 0 {
		return min(pe.RetryAfter, time.Second)
	}
	return time.Duration(attempt) * 50 * time.Millisecond
}

// call sends r to the provider through its breaker, retrying only when
// shouldRetry allows. sent reports whether any attempt may have reached the
// provider.
func (s *Service) call(ctx context.Context, acct *Account, r *normalize.Refund, full bool) (pr *normalize.ProviderRefund, sent bool, err error) {
	req := providerRequest(r, full)
	for attempt := 1; ; attempt++ {
		pr, err = s.callOnce(ctx, acct, req)
		if err == nil {
			return pr, true, nil
		}
		o := providers.OutcomeOf(err)
		if !rejected(err) && o != providers.OutcomeNotSent && o != providers.OutcomeRetryLater {
			sent = true
		}
		retry, why := shouldRetry(err, acct.Caps, attempt)
		fields := []zap.Field{zap.String("refund_id", r.ID), zap.String("provider", acct.Name), zap.Int("attempt", attempt),
			zap.String("outcome", o.String()), zap.Bool("retry", retry), zap.String("why", why), zap.Error(err)}
		if !rejected(err) && acct.Provider.ErrorCode(err) == normalize.CodeInternal {
			// The provider says our request was malformed (Yoco's 422: one
			// key, two payloads): a bug of ours, not the merchant's.
			s.log.Error("provider refused refundgate's own request as malformed: a refundgate bug", fields...)
		} else {
			s.log.Info("provider refund call failed", fields...)
		}
		if !retry {
			return nil, sent, err
		}
		select {
		case <-time.After(retryDelay(err, attempt)):
		case <-ctx.Done():
			return nil, sent, err
		}
	}
}

func (s *Service) callOnce(ctx context.Context, acct *Account, req *normalize.RefundRequest) (*normalize.ProviderRefund, error) {
	cctx, cancel := context.WithTimeout(ctx, acct.Timeout)
	defer cancel()
	var took time.Duration
	v, err := acct.breaker.execute(timed(&took, func() (any, error) { return acct.Provider.Refund(cctx, req) }))
	s.metrics.providerCall(acct.Name, "refund", err, took)
	if err != nil {
		return nil, err
	}
	return v.(*normalize.ProviderRefund), nil
}

// isFull reports whether stored refund r takes all that is left of its
// payment: r is counted in the totals, so it does when they reach the limit.
func (s *Service) isFull(ctx context.Context, acct *Account, r *normalize.Refund) bool {
	p, err := s.store.GetPayment(ctx, acct.Name, r.PaymentID)
	if err != nil {
		return false
	}
	t, err := s.store.Totals(ctx, acct.Name, r.PaymentID)
	return err == nil && t.Reserved() == p.Limit()
}

// send is phases 2 and 3 for a stored pending refund: call the provider,
// store the outcome and, when final or accepted, the idempotency answer.
// first says the refund was just created by this request; full that it
// takes the whole rest of the payment.
func (s *Service) send(ctx context.Context, acct *Account, r *normalize.Refund, requestID string, first, full bool) Answer {
	pr, sent, err := s.call(ctx, acct, r, full)
	// The budget bounds provider work: storing its outcome must not fail
	// because the provider spent it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	from := r.Status
	now := s.clock()
	r.Attempts++
	switch {
	case err == nil:
		applyProvider(r, pr, now)
	case !sent && first:
		// Nothing reached the provider: the refund never existed for it.
		if derr := s.store.Discard(ctx, r.ID); derr != nil {
			s.log.Error("discard unsent refund", zap.String("refund_id", r.ID), zap.Error(derr))
			break
		}
		if rejected(err) {
			return ProblemOf(unavailable(acct), requestID)
		}
		perr := s.providerProblem(acct, err, "")
		var ne *normalize.Error
		if errors.As(perr, &ne) && ne.Code == normalize.CodeProviderError {
			ne.Code, ne.RetryAfterSeconds = normalize.CodeProviderUnavailable, 1
			ne.Message = fmt.Sprintf("provider account %s did not take the request; nothing was sent, retry later", acct.Name)
		}
		return ProblemOf(perr, requestID)
	case providers.OutcomeOf(err) == providers.OutcomeDeclined:
		code := acct.Provider.ErrorCode(err)
		if code == normalize.CodeProviderError || code == "" {
			// A definite refusal the adapter has no better word for.
			code = normalize.CodeRefundDeclined
		}
		f := &normalize.Failure{Code: code, Message: "the provider refused the refund"}
		var pe *providers.Error
		if errors.As(err, &pe) {
			f.ProviderCode, f.ProviderMessage = pe.ProviderCode, pe.ProviderMessage
		}
		r.Status, r.Failure, r.NextSyncAt, r.UpdatedAt = normalize.StatusFailed, f, nil, now
	default:
		// Unknown outcome: stays pending; the reconciler settles it.
		next := now.Add(backoff(r.Attempts, acct))
		r.NextSyncAt, r.UpdatedAt = &next, now
	}
	a := s.answerFor(acct, r, requestID)
	var stored *store.Answer
	if r.Status.Terminal() || r.Status == normalize.StatusPending && err == nil {
		stored = a.stored()
	}
	if err := s.store.UpdateRefund(ctx, r, from, stored); err != nil {
		return s.afterConflict(ctx, r, requestID, err)
	}
	return a
}

// afterConflict answers when phase 3 found the refund already moved on
// (a webhook or the reconciler settled it first).
func (s *Service) afterConflict(ctx context.Context, r *normalize.Refund, requestID string, err error) Answer {
	if !errors.Is(err, store.ErrStateChanged) {
		return s.internal(err, requestID, "store refund outcome")
	}
	cur, gerr := s.store.GetRefund(ctx, "", r.ID)
	if gerr != nil {
		return s.internal(gerr, requestID, "reload refund")
	}
	acct := s.snap.Load().accounts[cur.Provider]
	a := s.answerFor(acct, cur, requestID)
	if cur.Status.Terminal() {
		if uerr := s.store.UpdateRefund(ctx, cur, cur.Status, a.stored()); uerr != nil {
			s.log.Warn("store answer after conflict", zap.String("refund_id", r.ID), zap.Error(uerr))
		}
	}
	return a
}

// answerFor is the API answer for a refund in its current state.
func (s *Service) answerFor(acct *Account, r *normalize.Refund, requestID string) Answer {
	switch r.Status {
	case normalize.StatusSucceeded:
		return RefundAnswer(r, http.StatusCreated)
	case normalize.StatusPending:
		if r.ProviderRefundID != nil {
			return RefundAnswer(r, http.StatusCreated)
		}
		return RefundAnswer(r, http.StatusAccepted)
	case normalize.StatusRequiresApproval:
		return RefundAnswer(r, http.StatusAccepted)
	case normalize.StatusCanceled:
		return RefundAnswer(r, http.StatusOK)
	}
	f := r.Failure
	if f == nil {
		f = &normalize.Failure{Code: normalize.CodeRefundDeclined}
	}
	code := f.Code
	if code == "" || code == normalize.CodeInternal {
		code = normalize.CodeRefundDeclined
	}
	name := r.Provider
	if acct != nil {
		name = acct.Name
	}
	return ProblemOf(&normalize.Error{Code: code, RefundID: r.ID, Provider: name, ProviderCode: f.ProviderCode,
		ProviderMessage: f.ProviderMessage, Message: fmt.Sprintf("the provider refused refund %s; it is stored as failed", r.ID)}, requestID)
}

// applyProvider moves r to what the provider said, within the state machine.
func applyProvider(r *normalize.Refund, pr *normalize.ProviderRefund, now time.Time) bool {
	changed := false
	if pr.ProviderRefundID != "" && (r.ProviderRefundID == nil || *r.ProviderRefundID != pr.ProviderRefundID) {
		id := pr.ProviderRefundID
		r.ProviderRefundID, changed = &id, true
	}
	if pr.ProviderStatus != "" && (r.ProviderStatus == nil || *r.ProviderStatus != pr.ProviderStatus) {
		ps := pr.ProviderStatus
		r.ProviderStatus, changed = &ps, true
	}
	if pr.Status != r.Status && r.Status.CanTransition(pr.Status) {
		r.Status, changed = pr.Status, true
		if pr.Status == normalize.StatusFailed {
			r.Failure = pr.Failure
			if r.Failure == nil {
				r.Failure = &normalize.Failure{Code: normalize.CodeRefundDeclined, Message: "the provider refused the refund"}
			}
		}
	}
	if r.Status.Terminal() {
		r.NextSyncAt = nil
	}
	if changed {
		r.UpdatedAt = now
	}
	return changed
}

// providerProblem turns a provider error into the API's error, keeping the
// provider's code and message (scrubbed by the adapter).
func (s *Service) providerProblem(acct *Account, err error, refundID string) error {
	if rejected(err) {
		return unavailable(acct)
	}
	var ne *normalize.Error
	if errors.As(err, &ne) {
		return ne
	}
	code := acct.Provider.ErrorCode(err)
	e := &normalize.Error{Code: code, Provider: acct.Name, RefundID: refundID, Cause: err}
	var pe *providers.Error
	if errors.As(err, &pe) {
		e.ProviderCode, e.ProviderMessage, e.Fields = pe.ProviderCode, pe.ProviderMessage, pe.Details
		if pe.Outcome == providers.OutcomeRetryLater {
			// Nothing was applied; the provider asks for a pause: 429 when
			// it limits our rate, else 503.
			e.RetryAfterSeconds = max(1, int(pe.RetryAfter.Seconds()))
			if e.Code != normalize.CodeRateLimited {
				e.Code = normalize.CodeProviderUnavailable
			}
		}
	}
	switch e.Code {
	case normalize.CodePaymentNotFound:
		e.Message, e.Param = fmt.Sprintf("%s does not know this payment", acct.Name), "payment_id"
	case normalize.CodeProviderAuthFailed:
		e.Message = fmt.Sprintf("%s refused refundgate's credentials for account %s", acct.Type, acct.Name)
	case normalize.CodeProviderUnavailable:
		e.Message = fmt.Sprintf("%s is not taking requests now; retry later", acct.Name)
	case normalize.CodeRateLimited:
		e.Message = fmt.Sprintf("%s is limiting the rate of refundgate's requests; nothing was refunded, retry after %d s", acct.Name, e.RetryAfterSeconds)
	default:
		e.Message = fmt.Sprintf("%s answered with an error", acct.Name)
	}
	return e
}

// backoff is the wait before the reconciler's next look at a pending
// refund: seconds at first, then minutes, then hours.
func backoff(attempts int, acct *Account) time.Duration {
	steps := []time.Duration{2 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute,
		15 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour}
	d := steps[min(max(attempts-1, 0), len(steps)-1)]
	if acct != nil && d < acct.Timeout {
		d = acct.Timeout
	}
	return d
}
