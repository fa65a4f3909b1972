-- 0002_ledger makes each refund's two commits touch as few pages as they
-- can, and the ledger check O(1):
-- * the answer replayed for an idempotency key moves onto the refund row,
--   which phase 3 rewrites anyway (refund ids grow with time, so recent
--   rows share pages), instead of a second row keyed by the random key;
-- * a payment's reserved total (succeeded + pending + held) is kept in one
--   ledger row, updated in the same transaction as the refund, instead of
--   summed over an index that every status change rewrote;
-- * the due index holds only pending refunds, and the provider refund index
--   only refunds that have a provider refund id.
ALTER TABLE refunds ADD COLUMN answer_status INTEGER;
ALTER TABLE refunds ADD COLUMN answer_body BLOB;
UPDATE refunds SET
	answer_status = (SELECT k.answer_status FROM idempotency_keys k WHERE k.refund_id = refunds.id),
	answer_body = (SELECT k.answer_body FROM idempotency_keys k WHERE k.refund_id = refunds.id);
ALTER TABLE idempotency_keys DROP COLUMN answer_status;
ALTER TABLE idempotency_keys DROP COLUMN answer_body;

CREATE TABLE ledger (
	provider   TEXT    NOT NULL,
	payment_id TEXT    NOT NULL,
	reserved   INTEGER NOT NULL,
	PRIMARY KEY (provider, payment_id)
) WITHOUT ROWID;
INSERT INTO ledger (provider, payment_id, reserved)
	SELECT provider, payment_id, SUM(amount) FROM refunds
	WHERE status IN ('succeeded', 'pending', 'requires_approval')
	GROUP BY provider, payment_id;

DROP INDEX refunds_ledger;
DROP INDEX refunds_merchant_payment;
DROP INDEX refunds_due;
DROP INDEX refunds_provider_refund;
-- Lists by payment and the per-state totals of a payment.
CREATE INDEX refunds_payment ON refunds (payment_id, provider);
CREATE INDEX refunds_due ON refunds (next_sync_at) WHERE status = 'pending';
CREATE INDEX refunds_provider_refund ON refunds (provider, provider_refund_id)
	WHERE provider_refund_id IS NOT NULL;
