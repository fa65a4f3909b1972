-- 0001_init creates refundgate's tables. Times are integer unix microseconds
-- (UTC); metadata, line_items and failure are JSON text, NULL when unset.
CREATE TABLE refunds (
	id                 TEXT    NOT NULL PRIMARY KEY,
	merchant_id        TEXT    NOT NULL,
	provider           TEXT    NOT NULL,
	provider_type      TEXT    NOT NULL,
	payment_id         TEXT    NOT NULL,
	provider_refund_id TEXT,
	amount             INTEGER NOT NULL,
	currency           TEXT    NOT NULL,
	status             TEXT    NOT NULL,
	provider_status    TEXT,
	reason             TEXT    NOT NULL,
	description        TEXT,
	reference          TEXT,
	metadata           TEXT,
	line_items         TEXT,
	livemode           INTEGER NOT NULL DEFAULT 0,
	failure            TEXT,
	needs_attention    INTEGER NOT NULL DEFAULT 0,
	attempts           INTEGER NOT NULL DEFAULT 0,
	next_sync_at       INTEGER,
	sent_at            INTEGER,
	created_at         INTEGER NOT NULL,
	updated_at         INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX refunds_merchant_id ON refunds (merchant_id, id);
CREATE INDEX refunds_merchant_payment ON refunds (merchant_id, payment_id);
-- amount makes the ledger sum an index-only scan.
CREATE INDEX refunds_ledger ON refunds (provider, payment_id, status, amount);
CREATE INDEX refunds_due ON refunds (status, next_sync_at);
CREATE INDEX refunds_provider_refund ON refunds (provider, provider_refund_id);

CREATE TABLE idempotency_keys (
	merchant_id   TEXT    NOT NULL,
	key           TEXT    NOT NULL,
	request_hash  TEXT    NOT NULL,
	refund_id     TEXT    NOT NULL,
	answer_status INTEGER,
	answer_body   BLOB,
	created_at    INTEGER NOT NULL,
	PRIMARY KEY (merchant_id, key)
) WITHOUT ROWID;

CREATE INDEX idempotency_keys_refund ON idempotency_keys (refund_id);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

CREATE TABLE payments (
	provider          TEXT    NOT NULL,
	payment_id        TEXT    NOT NULL,
	currency          TEXT    NOT NULL,
	captured          INTEGER NOT NULL,
	external_refunded INTEGER NOT NULL,
	livemode          INTEGER NOT NULL DEFAULT 0,
	captured_at       INTEGER,
	fetched_at        INTEGER NOT NULL,
	PRIMARY KEY (provider, payment_id)
) WITHOUT ROWID;

CREATE TABLE webhook_events (
	provider TEXT    NOT NULL,
	event_id TEXT    NOT NULL,
	seen_at  INTEGER NOT NULL,
	PRIMARY KEY (provider, event_id)
) WITHOUT ROWID;
