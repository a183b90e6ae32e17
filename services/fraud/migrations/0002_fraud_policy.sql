-- Managed policy (rules, lists, per-merchant bands), its audit trail, the review queue and
-- the labeled history that fraud reports build. Every policy change bumps one version
-- counter in the same transaction; the scorer reloads rules and bands when it moves.
CREATE TABLE fraud_policy_version (
    id      SMALLINT PRIMARY KEY CHECK (id = 1),
    version BIGINT   NOT NULL
);
INSERT INTO fraud_policy_version (id, version) VALUES (1, 1);

CREATE TABLE fraud_rules (
    name        TEXT        PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]{0,62}$'),
    expression  TEXT        NOT NULL,
    action      TEXT        NOT NULL CHECK (action IN ('allow', 'block', 'review', '3ds')),
    enabled     BOOLEAN     NOT NULL DEFAULT true,
    description TEXT,
    version     INT         NOT NULL DEFAULT 1,
    updated_by  TEXT        NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE fraud_lists (
    name       TEXT        PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    kind       TEXT        NOT NULL CHECK (kind IN ('card', 'bin', 'ip', 'email', 'country')),
    standard   BOOLEAN     NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO fraud_lists (name, kind, standard) VALUES
    ('allow_cards', 'card', true), ('allow_bins', 'bin', true), ('allow_ips', 'ip', true),
    ('allow_emails', 'email', true), ('allow_countries', 'country', true),
    ('block_cards', 'card', true), ('block_bins', 'bin', true), ('block_ips', 'ip', true),
    ('block_emails', 'email', true), ('block_countries', 'country', true);

CREATE TABLE fraud_list_entries (
    list_name TEXT        NOT NULL REFERENCES fraud_lists (name),
    value     TEXT        NOT NULL,
    added_by  TEXT        NOT NULL,
    note      TEXT,
    added_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (list_name, value)
);
-- The scorer asks "which lists hold any of these values" once per batch.
CREATE INDEX fraud_list_entries_value ON fraud_list_entries (value);

CREATE TABLE fraud_merchant_bands (
    merchant_id TEXT        PRIMARY KEY,
    review_at   SMALLINT    NOT NULL,
    decline_at  SMALLINT    NOT NULL,
    updated_by  TEXT        NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (0 < review_at AND review_at <= decline_at AND decline_at <= 99)
);

-- Who changed what, when, from what to what. Never updated or deleted.
CREATE TABLE fraud_policy_audit (
    id             BIGSERIAL   PRIMARY KEY,
    policy_version BIGINT      NOT NULL,
    entity         TEXT        NOT NULL CHECK (entity IN ('rule', 'list', 'list_entry', 'bands')),
    entity_key     TEXT        NOT NULL,
    change         TEXT        NOT NULL,
    actor          TEXT        NOT NULL,
    at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    old            JSONB,
    new            JSONB
);
CREATE INDEX fraud_policy_audit_entity ON fraud_policy_audit (entity, entity_key, id);

ALTER TABLE fraud_decisions
    ADD COLUMN rules_fired       TEXT[]           NOT NULL DEFAULT '{}',
    ADD COLUMN action            TEXT             CHECK (action IN ('review', '3ds')),
    ADD COLUMN decided_by        TEXT             NOT NULL DEFAULT 'score',
    ADD COLUMN policy_version    BIGINT           NOT NULL DEFAULT 0,
    ADD COLUMN model_version     TEXT,
    ADD COLUMN model_probability DOUBLE PRECISION,
    ADD COLUMN top_features      JSONB            NOT NULL DEFAULT '[]',
    ADD COLUMN attributes        JSONB;
CREATE INDEX fraud_decisions_in_review ON fraud_decisions (created_at) WHERE decision = 'review';

CREATE TABLE fraud_review_resolutions (
    payment_id  UUID        PRIMARY KEY REFERENCES fraud_decisions (payment_id),
    decision    TEXT        NOT NULL CHECK (decision IN ('approve', 'decline')),
    note        TEXT,
    resolved_by TEXT        NOT NULL,
    resolved_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Labeled payments for training (label 1 = reported fraud). `features` holds the rule
-- attributes the payment was scored with (amount, time, context, velocity); never card data.
CREATE TABLE fraud_labeled_history (
    payment_id         UUID        PRIMARY KEY,
    label              SMALLINT    NOT NULL CHECK (label IN (0, 1)),
    source             TEXT        NOT NULL,
    reason             TEXT,
    reported_at        TIMESTAMPTZ NOT NULL,
    merchant_id        TEXT        NOT NULL,
    amount             BIGINT,
    currency           CHAR(3),
    card_fingerprint   TEXT        NOT NULL,
    card_bin           TEXT        NOT NULL,
    payment_created_at TIMESTAMPTZ,
    features           JSONB       NOT NULL,
    recorded_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
