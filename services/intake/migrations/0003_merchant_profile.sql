-- What a merchant record holds besides its name and keys (issue 3). Settlement learns these
-- from merchant.updated.v1; `version` increases with every change.
ALTER TABLE merchants
    ADD COLUMN cutoff_time      TIME    NOT NULL DEFAULT '23:59',
    ADD COLUMN fee_plan         TEXT    NOT NULL DEFAULT 'standard',
    ADD COLUMN max_installments INT     NOT NULL DEFAULT 12 CHECK (max_installments BETWEEN 1 AND 12),
    ADD COLUMN version          INT     NOT NULL DEFAULT 1,
    ADD COLUMN updated_at       TIMESTAMPTZ NOT NULL DEFAULT now();
