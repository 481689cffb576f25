-- trueup reference source: billing (system of record for subscriptions,
-- invoices, payments and delinquency), modelled on Stripe Billing / Zuora:
-- Customer, Subscription, Invoice and Payment objects with Stripe-style text
-- ids (cus_..., sub_..., in_..., py_/pi_/ch_/re_...).
--
-- Applied after sql/common/000_control.sql (updated_at trigger function,
-- heartbeat and signalling tables), inside the `billing` database, schema `public`, in one transaction
-- by the migration runner. Written to be idempotent anyway: re-running it is
-- a no-op. Column names listed in DESIGN.md ("Systems of record") are fixed;
-- every other column is nullable or defaulted, so an INSERT that names only
-- the DESIGN columns works.
--
-- Conventions (shared by the crm, billing and erp schemas):
--   * money is numeric(18,2), never float; amounts are non-negative (a
--     refund is a positive amount with kind = 'refund', see payments);
--   * currencies are ISO 4217 char(3) codes, countries ISO 3166-1 alpha-2;
--   * cross-system ids (crm_account_id, crm_opportunity_id, erp_order_no) are
--     plain, nullable, indexed text: no real billing system enforces them, and
--     wrong or missing links are exactly what trueup's consistency rules look
--     for, so they carry no FK and no format CHECK;
--   * every table has created_at / updated_at, updated_at is bumped by a
--     trigger on UPDATE, and every table is REPLICA IDENTITY FULL so logical
--     decoding (Debezium) carries the full before image of updates/deletes.

-- ---------------------------------------------------------------------------
-- customers (Stripe Customer)
-- ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS public.customers (
    id                  text        NOT NULL,
    crm_account_id      text        NULL,     -- crm accounts.id (ACC-...), not enforced
    name                text        NULL,     -- optional in Stripe
    email               text        NULL,
    currency            char(3)     NULL,     -- set by Stripe on the first subscription/invoice
    delinquent          boolean     NOT NULL DEFAULT false,
    -- realism
    phone               text        NULL,
    description         text        NULL,
    address_line1       text        NULL,
    address_line2       text        NULL,
    address_city        text        NULL,
    address_state       text        NULL,
    address_postal_code text        NULL,
    address_country     char(2)     NULL,
    tax_exempt          text        NOT NULL DEFAULT 'none',
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT customers_pkey PRIMARY KEY (id),
    CONSTRAINT customers_id_format_chk CHECK (id ~ '^cus_[A-Za-z0-9_-]+$'),
    CONSTRAINT customers_email_chk CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    CONSTRAINT customers_currency_chk CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT customers_address_country_chk CHECK (address_country ~ '^[A-Z]{2}$'),
    CONSTRAINT customers_tax_exempt_chk CHECK (tax_exempt IN ('none', 'exempt', 'reverse'))
);

-- ---------------------------------------------------------------------------
-- subscriptions (Stripe Subscription, one priced item)
-- ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS public.subscriptions (
    id                   text          NOT NULL,
    customer_id          text          NOT NULL,  -- FK below
    crm_opportunity_id   text          NULL,      -- crm opportunities.id (OPP-...), not enforced
    quantity             integer       NOT NULL DEFAULT 1,
    unit_amount          numeric(18,2) NOT NULL,
    currency             char(3)       NOT NULL,
    status               text          NOT NULL DEFAULT 'incomplete',
    -- realism
    price_id             text          NULL,      -- price_...
    product_name         text          NULL,
    billing_interval     text          NOT NULL DEFAULT 'month',
    current_period_start timestamptz   NULL,
    current_period_end   timestamptz   NULL,
    trial_end            timestamptz   NULL,
    cancel_at_period_end boolean       NOT NULL DEFAULT false,
    canceled_at          timestamptz   NULL,
    created_at           timestamptz   NOT NULL DEFAULT now(),
    updated_at           timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT subscriptions_pkey PRIMARY KEY (id),
    CONSTRAINT subscriptions_id_format_chk CHECK (id ~ '^sub_[A-Za-z0-9_-]+$'),
    CONSTRAINT subscriptions_quantity_chk CHECK (quantity >= 0),
    CONSTRAINT subscriptions_unit_amount_chk CHECK (unit_amount >= 0),
    CONSTRAINT subscriptions_currency_chk CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT subscriptions_status_chk CHECK (status IN (
        'incomplete', 'trialing', 'active', 'past_due', 'canceled', 'unpaid')),
    CONSTRAINT subscriptions_billing_interval_chk CHECK (billing_interval IN ('month', 'year')),
    CONSTRAINT subscriptions_period_chk CHECK (current_period_end >= current_period_start)
);

-- ---------------------------------------------------------------------------
-- invoices (Stripe Invoice)
-- ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS public.invoices (
    id              text          NOT NULL,
    customer_id     text          NOT NULL,  -- FK below
    subscription_id text          NULL,      -- FK below; null for one-off invoices
    erp_order_no    text          NULL,      -- erp sales_orders.order_no (SO...), not enforced
    amount_due      numeric(18,2) NOT NULL,
    amount_paid     numeric(18,2) NOT NULL DEFAULT 0,
    currency        char(3)       NOT NULL,
    status          text          NOT NULL DEFAULT 'draft',
    -- realism
    number          text          NULL,      -- human invoice number, assigned on finalisation
    issued_at       timestamptz   NULL,      -- finalised
    due_date        date          NULL,
    paid_at         timestamptz   NULL,
    period_start    timestamptz   NULL,
    period_end      timestamptz   NULL,
    created_at      timestamptz   NOT NULL DEFAULT now(),
    updated_at      timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT invoices_pkey PRIMARY KEY (id),
    CONSTRAINT invoices_id_format_chk CHECK (id ~ '^in_[A-Za-z0-9_-]+$'),
    -- amount_paid may exceed amount_due on purpose: over-payment is a
    -- consistency fault the rules report, not something the source rejects.
    CONSTRAINT invoices_amount_due_chk CHECK (amount_due >= 0),
    CONSTRAINT invoices_amount_paid_chk CHECK (amount_paid >= 0),
    CONSTRAINT invoices_currency_chk CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT invoices_status_chk CHECK (status IN ('draft', 'open', 'paid', 'uncollectible', 'void')),
    CONSTRAINT invoices_period_chk CHECK (period_end >= period_start)
);

-- ---------------------------------------------------------------------------
-- payments (Stripe PaymentIntent/Charge and Refund, one table)
--
-- Refunds are modelled with a `kind` column, not as a status:
--   kind = 'charge' : money collected from the customer;
--   kind = 'refund' : money returned to the customer, its own row with its own
--                     id, refunded_payment_id naming the charge it reverses.
-- `amount` is always positive; the direction comes from `kind`.
-- `status` is the row's own lifecycle: pending | succeeded | failed |
-- refunded. 'refunded' applies to charges only and means the charge has been
-- refunded in full (a partial refund leaves the charge 'succeeded'); a refund
-- row is pending, succeeded or failed. Net collected for an invoice is
-- sum(succeeded or refunded charges) - sum(succeeded refunds).
--
-- invoice_id is deliberately NOT a foreign key: a payment can reach billing
-- before, or without, its invoice (a payment recorded against a mistyped or
-- deleted invoice, or an invoice created later by an integration). The
-- simulator must be able to produce such an orphan payment, and the trueup
-- rules are what detect it. For the same reason refunded_payment_id is not
-- enforced either.
-- ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS public.payments (
    id                  text          NOT NULL,
    invoice_id          text          NULL,      -- invoices.id, intentionally NOT enforced (see above)
    customer_id         text          NOT NULL,  -- FK below
    amount              numeric(18,2) NOT NULL,
    currency            char(3)       NOT NULL,
    status              text          NOT NULL DEFAULT 'pending',
    kind                text          NOT NULL DEFAULT 'charge',
    -- realism
    refunded_payment_id text          NULL,      -- for kind = 'refund': the charge it reverses
    payment_method      text          NULL,
    paid_at             timestamptz   NULL,      -- when it succeeded
    failure_code        text          NULL,
    failure_message     text          NULL,
    description         text          NULL,
    created_at          timestamptz   NOT NULL DEFAULT now(),
    updated_at          timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT payments_pkey PRIMARY KEY (id),
    CONSTRAINT payments_id_format_chk CHECK (id ~ '^(py|pi|ch|re)_[A-Za-z0-9_-]+$'),
    CONSTRAINT payments_amount_chk CHECK (amount > 0),
    CONSTRAINT payments_currency_chk CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT payments_status_chk CHECK (status IN ('pending', 'succeeded', 'failed', 'refunded')),
    CONSTRAINT payments_kind_chk CHECK (kind IN ('charge', 'refund')),
    CONSTRAINT payments_refund_status_chk CHECK (kind = 'charge' OR status <> 'refunded'),
    CONSTRAINT payments_refunded_payment_chk CHECK (kind = 'refund' OR refunded_payment_id IS NULL),
    CONSTRAINT payments_payment_method_chk CHECK (payment_method IN (
        'card', 'ach_debit', 'sepa_debit', 'bank_transfer', 'wire', 'check'))
);

-- ---------------------------------------------------------------------------
-- Foreign keys inside billing (guarded: added only when missing).
-- payments.invoice_id and payments.refunded_payment_id are intentionally absent.
-- ---------------------------------------------------------------------------
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'public.subscriptions'::regclass
                     AND conname = 'subscriptions_customer_id_fkey') THEN
        ALTER TABLE public.subscriptions
            ADD CONSTRAINT subscriptions_customer_id_fkey
            FOREIGN KEY (customer_id) REFERENCES public.customers (id);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'public.invoices'::regclass
                     AND conname = 'invoices_customer_id_fkey') THEN
        ALTER TABLE public.invoices
            ADD CONSTRAINT invoices_customer_id_fkey
            FOREIGN KEY (customer_id) REFERENCES public.customers (id);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'public.invoices'::regclass
                     AND conname = 'invoices_subscription_id_fkey') THEN
        ALTER TABLE public.invoices
            ADD CONSTRAINT invoices_subscription_id_fkey
            FOREIGN KEY (subscription_id) REFERENCES public.subscriptions (id);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'public.payments'::regclass
                     AND conname = 'payments_customer_id_fkey') THEN
        ALTER TABLE public.payments
            ADD CONSTRAINT payments_customer_id_fkey
            FOREIGN KEY (customer_id) REFERENCES public.customers (id);
    END IF;
END;
$$;

-- ---------------------------------------------------------------------------
-- Indexes: FK columns, unenforced links and cross-system links
-- ---------------------------------------------------------------------------
CREATE INDEX IF NOT EXISTS customers_crm_account_id_idx          ON public.customers (crm_account_id);
CREATE INDEX IF NOT EXISTS subscriptions_customer_id_idx         ON public.subscriptions (customer_id);
CREATE INDEX IF NOT EXISTS subscriptions_crm_opportunity_id_idx  ON public.subscriptions (crm_opportunity_id);
CREATE INDEX IF NOT EXISTS invoices_customer_id_idx              ON public.invoices (customer_id);
CREATE INDEX IF NOT EXISTS invoices_subscription_id_idx          ON public.invoices (subscription_id);
CREATE INDEX IF NOT EXISTS invoices_erp_order_no_idx             ON public.invoices (erp_order_no);
CREATE UNIQUE INDEX IF NOT EXISTS invoices_number_key            ON public.invoices (number);
CREATE INDEX IF NOT EXISTS payments_invoice_id_idx               ON public.payments (invoice_id);
CREATE INDEX IF NOT EXISTS payments_customer_id_idx              ON public.payments (customer_id);
CREATE INDEX IF NOT EXISTS payments_refunded_payment_id_idx      ON public.payments (refunded_payment_id);

-- ---------------------------------------------------------------------------
-- updated_at triggers
-- ---------------------------------------------------------------------------
CREATE OR REPLACE TRIGGER customers_set_updated_at
    BEFORE UPDATE ON public.customers
    FOR EACH ROW EXECUTE FUNCTION public.trueup_set_updated_at();
CREATE OR REPLACE TRIGGER subscriptions_set_updated_at
    BEFORE UPDATE ON public.subscriptions
    FOR EACH ROW EXECUTE FUNCTION public.trueup_set_updated_at();
CREATE OR REPLACE TRIGGER invoices_set_updated_at
    BEFORE UPDATE ON public.invoices
    FOR EACH ROW EXECUTE FUNCTION public.trueup_set_updated_at();
CREATE OR REPLACE TRIGGER payments_set_updated_at
    BEFORE UPDATE ON public.payments
    FOR EACH ROW EXECUTE FUNCTION public.trueup_set_updated_at();

-- ---------------------------------------------------------------------------
-- Full before images in logical decoding
-- ---------------------------------------------------------------------------
ALTER TABLE public.customers        REPLICA IDENTITY FULL;
ALTER TABLE public.subscriptions    REPLICA IDENTITY FULL;
ALTER TABLE public.invoices         REPLICA IDENTITY FULL;
ALTER TABLE public.payments         REPLICA IDENTITY FULL;

-- ---------------------------------------------------------------------------
-- Catalog documentation
-- ---------------------------------------------------------------------------
COMMENT ON TABLE public.customers IS 'Billing customers (Stripe Customer). Billing owns delinquency.';
COMMENT ON COLUMN public.customers.crm_account_id IS 'CRM account id (ACC-...). Cross-system link, not enforced.';
COMMENT ON TABLE public.subscriptions IS 'Billing subscriptions (Stripe Subscription). Billing is their system of record.';
COMMENT ON COLUMN public.subscriptions.crm_opportunity_id IS 'CRM opportunity id (OPP-...). Cross-system link, not enforced.';
COMMENT ON COLUMN public.subscriptions.status IS 'incomplete | trialing | active | past_due | canceled | unpaid';
COMMENT ON TABLE public.invoices IS 'Billing invoices (Stripe Invoice). Billing is their system of record.';
COMMENT ON COLUMN public.invoices.erp_order_no IS 'ERP sales order number (SO...). Cross-system link, not enforced.';
COMMENT ON COLUMN public.invoices.status IS 'draft | open | paid | uncollectible | void';
COMMENT ON TABLE public.payments IS 'Charges and refunds (Stripe PaymentIntent/Charge/Refund); kind tells which, amount is always positive.';
COMMENT ON COLUMN public.payments.invoice_id IS 'Billing invoice id (in_...). Deliberately not a foreign key: orphan payments are a fault trueup detects.';
COMMENT ON COLUMN public.payments.kind IS 'charge | refund. Refunds are their own rows with a positive amount.';
COMMENT ON COLUMN public.payments.status IS 'pending | succeeded | failed | refunded (refunded: a charge refunded in full; never on a refund row)';
COMMENT ON COLUMN public.payments.refunded_payment_id IS 'For kind = refund: id of the charge it reverses. Not enforced.';
