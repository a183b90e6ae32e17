-- Multi-currency with FX (issue 13). The merchant's choice per accepted currency (convert it
-- into settlement_currency, or settle it in itself), its FX markup and what to do without a
-- fresh rate; and the freshest rate per currency pair that settlement holds, from
-- settlement.fx-rate.v1, so that a payment to be converted without one can be refused here.
ALTER TABLE merchants
    ADD COLUMN currency_settlement JSONB NOT NULL DEFAULT '{}',
    ADD COLUMN fx_markup_bps       INT   NOT NULL DEFAULT 0 CHECK (fx_markup_bps BETWEEN 0 AND 1000),
    ADD COLUMN fx_no_rate          TEXT  NOT NULL DEFAULT 'in_currency'
        CHECK (fx_no_rate IN ('in_currency', 'refuse'));

CREATE TABLE fx_rates (
    base        CHAR(3)         NOT NULL,
    quote       CHAR(3)         NOT NULL,
    rate_id     UUID            NOT NULL,
    rate        NUMERIC(30, 10) NOT NULL,
    source      TEXT            NOT NULL,
    as_of       TIMESTAMPTZ     NOT NULL,
    valid_until TIMESTAMPTZ     NOT NULL,
    updated_at  TIMESTAMPTZ     NOT NULL DEFAULT now(),
    PRIMARY KEY (base, quote, source)
);
