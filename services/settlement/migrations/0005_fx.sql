-- Multi-currency with FX (issue 13): the rates settlement holds, each merchant's choice per
-- currency, and the conversion fixed on each converted payment at its capture.
CREATE TABLE fx_rates (
    id          UUID PRIMARY KEY,
    base        CHAR(3)        NOT NULL,
    quote       CHAR(3)        NOT NULL CHECK (quote <> base),
    rate        NUMERIC(30, 10) NOT NULL CHECK (rate > 0),
    source      TEXT           NOT NULL CHECK (source IN ('tcmb', 'ecb', 'manual')),
    as_of       TIMESTAMPTZ    NOT NULL,
    valid_until TIMESTAMPTZ    NOT NULL CHECK (valid_until > as_of),
    created_at  TIMESTAMPTZ    NOT NULL DEFAULT now()
);
CREATE INDEX fx_rates_pair ON fx_rates (base, quote, as_of DESC);

-- {"EUR": "convert", "USD": "in_currency"}; a currency not named settles in itself.
ALTER TABLE merchants
    ADD COLUMN currency_settlement JSONB NOT NULL DEFAULT '{}',
    ADD COLUMN fx_markup_bps       INT   NOT NULL DEFAULT 0 CHECK (fx_markup_bps BETWEEN 0 AND 1000),
    ADD COLUMN fx_no_rate          TEXT  NOT NULL DEFAULT 'in_currency'
        CHECK (fx_no_rate IN ('in_currency', 'refuse'));

-- One row per payment whose merchant converts its currency: converted (with the rate fixed at
-- capture) or, when no fresh rate existed then, settled in its own currency.
CREATE TABLE payment_conversions (
    payment_id          UUID PRIMARY KEY REFERENCES settlement_payments (payment_id),
    status              TEXT        NOT NULL CHECK (status IN ('converted', 'no_rate')),
    currency            CHAR(3)     NOT NULL,
    amount              BIGINT      NOT NULL CHECK (amount >= 0),
    settlement_currency CHAR(3)     NOT NULL,
    converted_amount    BIGINT CHECK (converted_amount >= 0),
    markup_bps          INT,
    markup_amount       BIGINT CHECK (markup_amount >= 0),
    rate_id             UUID REFERENCES fx_rates (id),
    rate                NUMERIC(30, 10),
    rate_source         TEXT,
    rate_as_of          TIMESTAMPTZ,
    fixed_at            TIMESTAMPTZ NOT NULL,
    CHECK ((status = 'converted') = (rate_id IS NOT NULL))
);
