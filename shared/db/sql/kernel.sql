-- Bookkeeping every service keeps in its own schema ({schema} is the service name).
CREATE SCHEMA IF NOT EXISTS {schema};

CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
    name text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- Last event of each tenant log the relay has published to NATS.
CREATE TABLE IF NOT EXISTS {schema}.relay_positions (
    tenant_id text PRIMARY KEY,
    position bigint NOT NULL
);

-- Last event of each tenant log a projection has applied (same transaction as its rows).
CREATE TABLE IF NOT EXISTS {schema}.projection_positions (
    projection text NOT NULL,
    tenant_id text NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (projection, tenant_id)
);

-- Per consumer, per source log: the last position applied, to detect holes.
CREATE TABLE IF NOT EXISTS {schema}.consumer_positions (
    consumer text NOT NULL,
    source text NOT NULL,
    tenant_id text NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (consumer, source, tenant_id)
);

-- Every message a consumer has applied (or parked): its effect is never applied twice.
CREATE TABLE IF NOT EXISTS {schema}.processed_messages (
    consumer text NOT NULL,
    message_id text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);

-- Poison messages: kept with the reason instead of being redelivered forever.
CREATE TABLE IF NOT EXISTS {schema}.parked_messages (
    consumer text NOT NULL,
    message_id text NOT NULL,
    subject text NOT NULL,
    payload bytea NOT NULL,
    reason text NOT NULL,
    deliveries int NOT NULL,
    parked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);

-- A follower (projection or consumer) that cannot apply an event of a tenant stops there,
-- for that tenant only, and records why; it is retried until it applies (shared/resilience).
CREATE TABLE IF NOT EXISTS {schema}.stalls (
    follower text NOT NULL,
    tenant_id text NOT NULL,
    position bigint NOT NULL,
    message_id text NOT NULL,
    reason text NOT NULL,
    attempts int NOT NULL DEFAULT 1,
    first_failed_at timestamptz NOT NULL DEFAULT now(),
    last_failed_at timestamptz NOT NULL DEFAULT now(),
    retry_at timestamptz NOT NULL,
    PRIMARY KEY (follower, tenant_id)
);
