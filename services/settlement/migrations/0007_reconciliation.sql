-- Reconciliation (issue 13, docs/reconciliation.md): authorization's clearing files as
-- received (authorization.clearing-reported.v1; the newest version of a day replaces the
-- older), each run of the matching job, and the mismatches of the latest run per merchant,
-- currency and date.
CREATE TABLE clearing_files (
    merchant_id    TEXT        NOT NULL,
    currency       CHAR(3)     NOT NULL,
    clearing_date  DATE        NOT NULL,
    version        INT         NOT NULL,
    part_count     INT         NOT NULL,
    capture_count  INT         NOT NULL,
    capture_amount BIGINT      NOT NULL,
    refund_count   INT         NOT NULL,
    refund_amount  BIGINT      NOT NULL,
    void_count     INT         NOT NULL,
    void_amount    BIGINT      NOT NULL,
    generated_at   TIMESTAMPTZ NOT NULL,
    completed_at   TIMESTAMPTZ,
    PRIMARY KEY (merchant_id, currency, clearing_date)
);

CREATE TABLE clearing_parts (
    merchant_id   TEXT    NOT NULL,
    currency      CHAR(3) NOT NULL,
    clearing_date DATE    NOT NULL,
    version       INT     NOT NULL,
    part          INT     NOT NULL,
    PRIMARY KEY (merchant_id, currency, clearing_date, version, part)
);

CREATE TABLE clearing_lines (
    id                    BIGSERIAL PRIMARY KEY,
    merchant_id           TEXT        NOT NULL,
    currency              CHAR(3)     NOT NULL,
    clearing_date         DATE        NOT NULL,
    version               INT         NOT NULL,
    kind                  TEXT        NOT NULL CHECK (kind IN ('capture', 'refund', 'void')),
    payment_id            UUID        NOT NULL,
    refund_id             UUID,
    amount                BIGINT      NOT NULL,
    occurred_at           TIMESTAMPTZ NOT NULL,
    ledger_transaction_id UUID        NOT NULL
);
CREATE INDEX clearing_lines_file ON clearing_lines (merchant_id, currency, clearing_date);
CREATE INDEX clearing_lines_ledger ON clearing_lines (ledger_transaction_id);

CREATE TABLE recon_runs (
    id               UUID PRIMARY KEY,
    merchant_id      TEXT        NOT NULL,
    currency         CHAR(3)     NOT NULL,
    recon_date       DATE        NOT NULL,
    trigger          TEXT        NOT NULL CHECK (trigger IN ('daily', 'manual')),
    clearing_version INT,
    clearing_lines   INT         NOT NULL,
    ledger_lines     INT         NOT NULL,
    payouts          INT         NOT NULL,
    mismatch_count   INT         NOT NULL,
    ran_at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX recon_runs_day ON recon_runs (recon_date DESC, merchant_id, currency);

CREATE TABLE recon_mismatches (
    id              BIGSERIAL PRIMARY KEY,
    run_id          UUID        NOT NULL REFERENCES recon_runs (id),
    merchant_id     TEXT        NOT NULL,
    currency        CHAR(3)     NOT NULL,
    recon_date      DATE        NOT NULL,
    kind            TEXT        NOT NULL CHECK (kind IN ('missing', 'duplicate', 'amount_differs')),
    source          TEXT        NOT NULL CHECK (source IN ('clearing', 'ledger', 'payouts')),
    reference       UUID        NOT NULL,
    refund_id       UUID,
    expected_amount BIGINT,
    actual_amount   BIGINT,
    reason          TEXT        NOT NULL,
    detected_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX recon_mismatches_day ON recon_mismatches (merchant_id, currency, recon_date);
