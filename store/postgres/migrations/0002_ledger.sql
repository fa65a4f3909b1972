-- 0002_ledger keeps each payment's reserved total (succeeded + pending +
-- held refunds) in one row, locked and updated in the transaction that
-- changes it: Create's ledger check is O(1) and no longer sums the
-- payment's refunds under an advisory lock (a plan cached while the table
-- was empty made that sum read every refund of the provider).
CREATE TABLE ledger (
	provider   text   NOT NULL,
	payment_id text   NOT NULL,
	reserved   bigint NOT NULL,
	PRIMARY KEY (provider, payment_id)
);
INSERT INTO ledger (provider, payment_id, reserved)
	SELECT provider, payment_id, SUM(amount) FROM refunds
	WHERE status IN ('succeeded', 'pending', 'requires_approval')
	GROUP BY provider, payment_id;
