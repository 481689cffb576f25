-- trueup reference source: ERP (system of record for customer numbers, tax
-- ids, credit hold, sales orders and financial postings), modelled on
-- NetSuite / SAP S/4HANA: Customer master, Sales Order and accounts
-- receivable ledger postings, with ERP-style document numbers: customer
-- numbers C + digits (C10042), sales orders SO + digits (SO00017,
-- SO-2024-00017), AR postings AR + digits (AR-000901); an optional dash
-- after the prefix and dashes between digit groups are accepted.
--
-- Applied after sql/common/000_control.sql (updated_at trigger function,
-- heartbeat and signalling tables), inside the `erp` database, schema `public`, in one transaction by
-- the migration runner. Written to be idempotent anyway: re-running it is a
-- no-op. Column names listed in DESIGN.md ("Systems of record") are fixed;
-- every other column is nullable or defaulted, so an INSERT that names only
-- the DESIGN columns works.
--
-- Conventions (shared by the crm, billing and erp schemas):
--   * money is numeric(18,2), never float; amounts are non-negative (the
--     direction of an AR posting comes from entry_type, see ar_postings);
--   * currencies are ISO 4217 char(3) codes, countries ISO 3166-1 alpha-2;
--   * cross-system ids (crm_account_id, crm_opportunity_id,
--     billing_subscription_id, invoice_ref) are plain, nullable, indexed
--     text: no real ERP enforces them, and wrong or missing links are exactly
--     what trueup's consistency rules look for, so they carry no FK and no
--     format CHECK;
--   * every table has created_at / updated_at, updated_at is bumped by a
--     trigger on UPDATE, and every table is REPLICA IDENTITY FULL so logical
--     decoding (Debezium) carries the full before image of updates/deletes.

-- ---------------------------------------------------------------------------
-- customers (customer master)
-- ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS public.customers (
    customer_no      text          NOT NULL,
    crm_account_id   text          NULL,      -- crm accounts.id (ACC-...), not enforced
    name             text          NOT NULL,
    tax_id           text          NULL,
    country          char(2)       NULL,
    credit_hold      boolean       NOT NULL DEFAULT false,
    -- realism
    subsidiary       text          NULL,
    currency         char(3)       NULL,      -- default transaction currency
    payment_terms    text          NULL DEFAULT 'net_30',
    credit_limit     numeric(18,2) NULL,
    email            text          NULL,
    bill_city        text          NULL,
    bill_postal_code text          NULL,
    inactive         boolean       NOT NULL DEFAULT false,
    created_at       timestamptz   NOT NULL DEFAULT now(),
    updated_at       timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT customers_pkey PRIMARY KEY (customer_no),
    CONSTRAINT customers_customer_no_format_chk CHECK (customer_no ~ '^C-?[0-9][0-9-]*$'),
    CONSTRAINT customers_name_chk CHECK (btrim(name) <> ''),
    CONSTRAINT customers_country_chk CHECK (country ~ '^[A-Z]{2}$'),
    CONSTRAINT customers_currency_chk CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT customers_payment_terms_chk CHECK (payment_terms IN (
        'due_on_receipt', 'net_15', 'net_30', 'net_45', 'net_60', 'net_90')),
    CONSTRAINT customers_credit_limit_chk CHECK (credit_limit >= 0),
    CONSTRAINT customers_email_chk CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+$')
);

-- ---------------------------------------------------------------------------
-- sales_orders (NetSuite Sales Order)
-- ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS public.sales_orders (
    order_no                text          NOT NULL,
    customer_no             text          NOT NULL,  -- FK below
    crm_opportunity_id      text          NULL,      -- crm opportunities.id (OPP-...), not enforced
    billing_subscription_id text          NULL,      -- billing subscriptions.id (sub_...), not enforced
    total_amount            numeric(18,2) NOT NULL,
    currency                char(3)       NOT NULL,
    status                  text          NOT NULL DEFAULT 'pending_approval',
    -- realism
    order_date              date          NOT NULL DEFAULT CURRENT_DATE,
    po_number               text          NULL,      -- customer's purchase order reference
    subsidiary              text          NULL,
    memo                    text          NULL,
    created_at              timestamptz   NOT NULL DEFAULT now(),
    updated_at              timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT sales_orders_pkey PRIMARY KEY (order_no),
    CONSTRAINT sales_orders_order_no_format_chk CHECK (order_no ~ '^SO-?[0-9][0-9-]*$'),
    CONSTRAINT sales_orders_total_amount_chk CHECK (total_amount >= 0),
    CONSTRAINT sales_orders_currency_chk CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT sales_orders_status_chk CHECK (status IN (
        'pending_approval', 'pending_fulfillment', 'partially_fulfilled',
        'billed', 'closed', 'cancelled'))
);

-- ---------------------------------------------------------------------------
-- ar_postings (accounts receivable ledger entries)
--
-- amount is always non-negative; entry_type gives the direction on the AR
-- account: 'invoice' debits AR (the customer owes more), 'payment' and
-- 'credit_memo' credit it, 'adjustment' is a manual correction (see memo).
-- An invoice posting mirrors a billing invoice: invoice_ref holds the billing
-- invoice id (in_...) and amount should equal its amount_due.
-- ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS public.ar_postings (
    id           text          NOT NULL,
    invoice_ref  text          NULL,      -- billing invoices.id (in_...), not enforced
    order_no     text          NULL,      -- FK below; null for postings not tied to an order
    customer_no  text          NOT NULL,  -- FK below
    amount       numeric(18,2) NOT NULL,
    currency     char(3)       NOT NULL,
    -- realism
    entry_type   text          NOT NULL DEFAULT 'invoice',
    posting_date date          NOT NULL DEFAULT CURRENT_DATE,
    gl_account   text          NOT NULL DEFAULT '1200',  -- Accounts Receivable
    document_no  text          NULL,      -- ERP document number (e.g. INV..., CM...)
    due_date     date          NULL,
    memo         text          NULL,
    created_at   timestamptz   NOT NULL DEFAULT now(),
    updated_at   timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT ar_postings_pkey PRIMARY KEY (id),
    CONSTRAINT ar_postings_id_format_chk CHECK (id ~ '^AR-?[0-9][0-9-]*$'),
    CONSTRAINT ar_postings_amount_chk CHECK (amount >= 0),
    CONSTRAINT ar_postings_currency_chk CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT ar_postings_entry_type_chk CHECK (entry_type IN (
        'invoice', 'payment', 'credit_memo', 'adjustment'))
);

-- ---------------------------------------------------------------------------
-- Foreign keys inside the ERP (guarded: added only when missing)
-- ---------------------------------------------------------------------------
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'public.sales_orders'::regclass
                     AND conname = 'sales_orders_customer_no_fkey') THEN
        ALTER TABLE public.sales_orders
            ADD CONSTRAINT sales_orders_customer_no_fkey
            FOREIGN KEY (customer_no) REFERENCES public.customers (customer_no);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'public.ar_postings'::regclass
                     AND conname = 'ar_postings_order_no_fkey') THEN
        ALTER TABLE public.ar_postings
            ADD CONSTRAINT ar_postings_order_no_fkey
            FOREIGN KEY (order_no) REFERENCES public.sales_orders (order_no);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'public.ar_postings'::regclass
                     AND conname = 'ar_postings_customer_no_fkey') THEN
        ALTER TABLE public.ar_postings
            ADD CONSTRAINT ar_postings_customer_no_fkey
            FOREIGN KEY (customer_no) REFERENCES public.customers (customer_no);
    END IF;
END;
$$;

-- ---------------------------------------------------------------------------
-- Indexes: FK columns and cross-system links
-- ---------------------------------------------------------------------------
CREATE INDEX IF NOT EXISTS customers_crm_account_id_idx                ON public.customers (crm_account_id);
CREATE INDEX IF NOT EXISTS sales_orders_customer_no_idx                ON public.sales_orders (customer_no);
CREATE INDEX IF NOT EXISTS sales_orders_crm_opportunity_id_idx         ON public.sales_orders (crm_opportunity_id);
CREATE INDEX IF NOT EXISTS sales_orders_billing_subscription_id_idx    ON public.sales_orders (billing_subscription_id);
CREATE INDEX IF NOT EXISTS ar_postings_invoice_ref_idx                 ON public.ar_postings (invoice_ref);
CREATE INDEX IF NOT EXISTS ar_postings_order_no_idx                    ON public.ar_postings (order_no);
CREATE INDEX IF NOT EXISTS ar_postings_customer_no_idx                 ON public.ar_postings (customer_no);

-- ---------------------------------------------------------------------------
-- updated_at triggers
-- ---------------------------------------------------------------------------
CREATE OR REPLACE TRIGGER customers_set_updated_at
    BEFORE UPDATE ON public.customers
    FOR EACH ROW EXECUTE FUNCTION public.trueup_set_updated_at();
CREATE OR REPLACE TRIGGER sales_orders_set_updated_at
    BEFORE UPDATE ON public.sales_orders
    FOR EACH ROW EXECUTE FUNCTION public.trueup_set_updated_at();
CREATE OR REPLACE TRIGGER ar_postings_set_updated_at
    BEFORE UPDATE ON public.ar_postings
    FOR EACH ROW EXECUTE FUNCTION public.trueup_set_updated_at();

-- ---------------------------------------------------------------------------
-- Full before images in logical decoding
-- ---------------------------------------------------------------------------
ALTER TABLE public.customers        REPLICA IDENTITY FULL;
ALTER TABLE public.sales_orders     REPLICA IDENTITY FULL;
ALTER TABLE public.ar_postings      REPLICA IDENTITY FULL;

-- ---------------------------------------------------------------------------
-- Catalog documentation
-- ---------------------------------------------------------------------------
COMMENT ON TABLE public.customers IS 'ERP customer master. ERP owns customer number, tax id and credit hold.';
COMMENT ON COLUMN public.customers.crm_account_id IS 'CRM account id (ACC-...). Cross-system link, not enforced.';
COMMENT ON TABLE public.sales_orders IS 'ERP sales orders. ERP is their system of record.';
COMMENT ON COLUMN public.sales_orders.crm_opportunity_id IS 'CRM opportunity id (OPP-...). Cross-system link, not enforced.';
COMMENT ON COLUMN public.sales_orders.billing_subscription_id IS 'Billing subscription id (sub_...). Cross-system link, not enforced.';
COMMENT ON COLUMN public.sales_orders.status IS 'pending_approval | pending_fulfillment | partially_fulfilled | billed | closed | cancelled';
COMMENT ON TABLE public.ar_postings IS 'Accounts receivable ledger postings. ERP owns financial postings.';
COMMENT ON COLUMN public.ar_postings.invoice_ref IS 'Billing invoice id (in_...). Cross-system link, not enforced.';
COMMENT ON COLUMN public.ar_postings.entry_type IS 'invoice (debit AR) | payment | credit_memo (credit AR) | adjustment; amount is always non-negative.';
