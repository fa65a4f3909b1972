-- 0001_init creates refundgate's tables. Ids compare bytewise (COLLATE "C")
-- so ULID order is time order; metadata, line_items and failure are JSON,
-- NULL when unset.
CREATE TABLE refunds (
	id                 text COLLATE "C" NOT NULL PRIMARY KEY,
	merchant_id        text        NOT NULL,
	provider           text        NOT NULL,
	provider_type      text        NOT NULL,
	payment_id         text        NOT NULL,
	provider_refund_id text,
	amount             bigint      NOT NULL,
	currency           text        NOT NULL,
	status             text        NOT NULL,
	provider_status    text,
	reason             text        NOT NULL,
	description        text,
	reference          text,
	metadata           jsonb,
	line_items         jsonb,
	livemode           boolean     NOT NULL DEFAULT false,
	failure            jsonb,
	needs_attention    boolean     NOT NULL DEFAULT false,
	attempts           integer     NOT NULL DEFAULT 0,
	next_sync_at       timestamptz,
	sent_at            timestamptz,
	created_at         timestamptz NOT NULL,
	updated_at         timestamptz NOT NULL
);

CREATE INDEX refunds_merchant_id ON refunds (merchant_id, id);
CREATE INDEX refunds_merchant_payment ON refunds (merchant_id, payment_id);
-- amount makes the ledger sum an index-only scan.
CREATE INDEX refunds_ledger ON refunds (provider, payment_id, status, amount);
CREATE INDEX refunds_due ON refunds (status, next_sync_at);
CREATE INDEX refunds_provider_refund ON refunds (provider, provider_refund_id);

CREATE TABLE idempotency_keys (
	merchant_id   text        NOT NULL,
	key           text        NOT NULL,
	request_hash  text        NOT NULL,
	refund_id     text COLLATE "C" NOT NULL,
	answer_status integer,
	answer_body   bytea,
	created_at    timestamptz NOT NULL,
	PRIMARY KEY (merchant_id, key)
);

CREATE INDEX idempotency_keys_refund ON idempotency_keys (refund_id);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

CREATE TABLE payments (
	provider          text        NOT NULL,
	payment_id        text        NOT NULL,
	currency          text        NOT NULL,
	captured          bigint      NOT NULL,
	external_refunded bigint      NOT NULL,
	livemode          boolean     NOT NULL DEFAULT false,
	captured_at       timestamptz,
	fetched_at        timestamptz NOT NULL,
	PRIMARY KEY (provider, payment_id)
);

CREATE TABLE webhook_events (
	provider text        NOT NULL,
	event_id text        NOT NULL,
	seen_at  timestamptz NOT NULL,
	PRIMARY KEY (provider, event_id)
);
