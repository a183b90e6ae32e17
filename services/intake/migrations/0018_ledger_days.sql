-- Statements (issue 13): settlement's ledger days (settlement.ledger-day.v1), the newest
-- version of each merchant, currency and posting day. Monthly statements are built from here.
CREATE TABLE ledger_days (
    merchant_id     TEXT        NOT NULL,
    currency        CHAR(3)     NOT NULL,
    day             DATE        NOT NULL,
    time_zone       TEXT        NOT NULL,
    opening_balance BIGINT      NOT NULL,
    sales           BIGINT      NOT NULL,
    refunds         BIGINT      NOT NULL,
    fees            BIGINT      NOT NULL,
    fx              BIGINT      NOT NULL,
    disputes        BIGINT      NOT NULL,
    payouts         BIGINT      NOT NULL,
    other           BIGINT      NOT NULL,
    closing_balance BIGINT      NOT NULL,
    capture_count   INT         NOT NULL,
    reversal_count  INT         NOT NULL,
    refund_count    INT         NOT NULL,
    payout_count    INT         NOT NULL,
    version         INT         NOT NULL,
    computed_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (merchant_id, currency, day)
);
