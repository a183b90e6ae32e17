-- Disputes (issue 13): intake's copy of settlement's disputes (settlement.dispute-updated.v1),
-- the payable moves each booked and their batches (behind the balance until the batch closes),
-- the merchant's answers and the evidence documents it uploaded. Only new tables.
CREATE TABLE disputes (
    dispute_id     UUID PRIMARY KEY,
    merchant_id    TEXT        NOT NULL,
    payment_id     UUID        NOT NULL,
    amount         BIGINT      NOT NULL,
    currency       CHAR(3)     NOT NULL,
    reason_code    TEXT        NOT NULL,
    reason         TEXT        NOT NULL,
    status         TEXT        NOT NULL,
    respond_by     TIMESTAMPTZ NOT NULL,
    fee            BIGINT      NOT NULL,
    held           BIGINT      NOT NULL,
    outcome_reason TEXT,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    version        BIGINT      NOT NULL,
    -- A lost dispute is reported to fraud once (FraudReported, source chargeback).
    fraud_reported BOOLEAN     NOT NULL DEFAULT false
);
CREATE INDEX disputes_merchant ON disputes (merchant_id, created_at DESC, dispute_id DESC);

CREATE TABLE dispute_moves (
    dispute_id  UUID    NOT NULL REFERENCES disputes (dispute_id),
    kind        TEXT    NOT NULL,
    merchant_id TEXT    NOT NULL,
    currency    CHAR(3) NOT NULL,
    batch_id    UUID    NOT NULL,
    amount      BIGINT  NOT NULL,
    PRIMARY KEY (dispute_id, kind)
);
CREATE INDEX dispute_moves_merchant ON dispute_moves (merchant_id);

-- The merchant's one answer (accept, or evidence), as intake took it before the deadline.
CREATE TABLE dispute_answers (
    dispute_id   UUID PRIMARY KEY REFERENCES disputes (dispute_id),
    merchant_id  TEXT        NOT NULL,
    response     TEXT        NOT NULL CHECK (response IN ('accept', 'evidence')),
    text         TEXT,
    refs         JSONB       NOT NULL DEFAULT '[]',
    responded_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE dispute_documents (
    document_id  UUID PRIMARY KEY,
    dispute_id   UUID        NOT NULL REFERENCES disputes (dispute_id),
    merchant_id  TEXT        NOT NULL,
    file_name    TEXT        NOT NULL,
    content_type TEXT        NOT NULL,
    size         INT         NOT NULL,
    sha256       TEXT        NOT NULL,
    content      BYTEA       NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX dispute_documents_dispute ON dispute_documents (dispute_id);
