-- trueup reference source: CRM (system of record for accounts and the sales
-- pipeline), modelled on Salesforce: Account and Opportunity objects with
-- Salesforce-style text ids (ACC-..., OPP-...).
--
-- Applied after sql/common/000_control.sql (updated_at trigger function,
-- heartbeat and signalling tables), inside the `crm` database, schema `public`, in one transaction by
-- the migration runner. Written to be idempotent anyway: re-running it is a
-- no-op. Column names listed in DESIGN.md ("Systems of record") are fixed;
-- every other column is nullable or defaulted, so an INSERT that names only
-- the DESIGN columns works.
--
-- Conventions (shared by the crm, billing and erp schemas):
--   * money is numeric(18,2), never float; amounts are non-negative;
--   * currencies are ISO 4217 char(3) codes, countries ISO 3166-1 alpha-2;
--   * cross-system ids (billing_customer_id, erp_customer_no) are plain,
--     nullable, indexed text: no real CRM enforces them, and wrong or missing
--     links are exactly what trueup's consistency rules look for, so they
--     carry no FK and no format CHECK;
--   * every table has created_at / updated_at, updated_at is bumped by a
--     trigger on UPDATE, and every table is REPLICA IDENTITY FULL so logical
--     decoding (Debezium) carries the full before image of updates/deletes.

-- ---------------------------------------------------------------------------
-- accounts (Salesforce Account)
-- ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS public.accounts (
    id                  text        NOT NULL,
    billing_customer_id text        NULL,     -- billing customers.id (cus_...), not enforced
    erp_customer_no     text        NULL,     -- erp customers.customer_no (C...), not enforced
    parent_account_id   text        NULL,     -- account hierarchy, FK below
    name                text        NOT NULL,
    domain              text        NULL,
    country             char(2)     NULL,
    tax_id              text        NULL,
    status              text        NOT NULL DEFAULT 'prospect',
    -- realism
    industry            text        NULL,
    owner_email         text        NULL,
    phone               text        NULL,
    employee_count      integer     NULL,
    billing_street      text        NULL,
    billing_city        text        NULL,
    billing_state       text        NULL,
    billing_postal_code text        NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT accounts_pkey PRIMARY KEY (id),
    CONSTRAINT accounts_id_format_chk CHECK (id ~ '^ACC-[A-Za-z0-9_-]+$'),
    CONSTRAINT accounts_name_chk CHECK (btrim(name) <> ''),
    CONSTRAINT accounts_country_chk CHECK (country ~ '^[A-Z]{2}$'),
    CONSTRAINT accounts_status_chk CHECK (status IN ('prospect', 'active', 'churned', 'inactive')),
    CONSTRAINT accounts_not_own_parent_chk CHECK (parent_account_id <> id),
    CONSTRAINT accounts_employee_count_chk CHECK (employee_count >= 0),
    CONSTRAINT accounts_owner_email_chk CHECK (owner_email ~ '^[^@[:space:]]+@[^@[:space:]]+$')
);

-- ---------------------------------------------------------------------------
-- opportunities (Salesforce Opportunity)
-- ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS public.opportunities (
    id          text          NOT NULL,
    account_id  text          NOT NULL,   -- FK below
    stage       text          NOT NULL DEFAULT 'prospecting',
    amount      numeric(18,2) NULL,       -- Salesforce Amount is optional early in the pipeline
    currency    char(3)       NOT NULL,
    close_date  date          NULL,
    -- realism
    name        text          NULL,
    type        text          NULL,
    probability smallint      NULL,       -- percent, 0..100
    owner_email text          NULL,
    lead_source text          NULL,
    created_at  timestamptz   NOT NULL DEFAULT now(),
    updated_at  timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT opportunities_pkey PRIMARY KEY (id),
    CONSTRAINT opportunities_id_format_chk CHECK (id ~ '^OPP-[A-Za-z0-9_-]+$'),
    CONSTRAINT opportunities_stage_chk CHECK (stage IN (
        'prospecting', 'qualification', 'proposal', 'negotiation', 'closed_won', 'closed_lost')),
    CONSTRAINT opportunities_amount_chk CHECK (amount >= 0),
    CONSTRAINT opportunities_currency_chk CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT opportunities_type_chk CHECK (type IN ('new_business', 'renewal', 'expansion')),
    CONSTRAINT opportunities_probability_chk CHECK (probability BETWEEN 0 AND 100),
    CONSTRAINT opportunities_owner_email_chk CHECK (owner_email ~ '^[^@[:space:]]+@[^@[:space:]]+$')
);

-- ---------------------------------------------------------------------------
-- Foreign keys inside the CRM (guarded: added only when missing)
-- ---------------------------------------------------------------------------
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'public.accounts'::regclass
                     AND conname = 'accounts_parent_account_id_fkey') THEN
        -- Deleting a parent detaches its children, as Salesforce does.
        ALTER TABLE public.accounts
            ADD CONSTRAINT accounts_parent_account_id_fkey
            FOREIGN KEY (parent_account_id) REFERENCES public.accounts (id)
            ON DELETE SET NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'public.opportunities'::regclass
                     AND conname = 'opportunities_account_id_fkey') THEN
        ALTER TABLE public.opportunities
            ADD CONSTRAINT opportunities_account_id_fkey
            FOREIGN KEY (account_id) REFERENCES public.accounts (id);
    END IF;
END;
$$;

-- ---------------------------------------------------------------------------
-- Indexes: FK columns and cross-system links
-- ---------------------------------------------------------------------------
CREATE INDEX IF NOT EXISTS accounts_parent_account_id_idx   ON public.accounts (parent_account_id);
CREATE INDEX IF NOT EXISTS accounts_billing_customer_id_idx ON public.accounts (billing_customer_id);
CREATE INDEX IF NOT EXISTS accounts_erp_customer_no_idx     ON public.accounts (erp_customer_no);
CREATE INDEX IF NOT EXISTS accounts_domain_idx              ON public.accounts (lower(domain));
CREATE INDEX IF NOT EXISTS opportunities_account_id_idx     ON public.opportunities (account_id);
CREATE INDEX IF NOT EXISTS opportunities_stage_idx          ON public.opportunities (stage);

-- ---------------------------------------------------------------------------
-- updated_at triggers
-- ---------------------------------------------------------------------------
CREATE OR REPLACE TRIGGER accounts_set_updated_at
    BEFORE UPDATE ON public.accounts
    FOR EACH ROW EXECUTE FUNCTION public.trueup_set_updated_at();
CREATE OR REPLACE TRIGGER opportunities_set_updated_at
    BEFORE UPDATE ON public.opportunities
    FOR EACH ROW EXECUTE FUNCTION public.trueup_set_updated_at();

-- ---------------------------------------------------------------------------
-- Full before images in logical decoding
-- ---------------------------------------------------------------------------
ALTER TABLE public.accounts         REPLICA IDENTITY FULL;
ALTER TABLE public.opportunities    REPLICA IDENTITY FULL;

-- ---------------------------------------------------------------------------
-- Catalog documentation
-- ---------------------------------------------------------------------------
COMMENT ON TABLE public.accounts IS 'CRM accounts (Salesforce Account). CRM owns name, domain, country.';
COMMENT ON COLUMN public.accounts.billing_customer_id IS 'Billing customer id (cus_...). Cross-system link, not enforced.';
COMMENT ON COLUMN public.accounts.erp_customer_no IS 'ERP customer number (C...). Cross-system link, not enforced.';
COMMENT ON COLUMN public.accounts.status IS 'prospect | active | churned | inactive';
COMMENT ON TABLE public.opportunities IS 'CRM opportunities (Salesforce Opportunity). CRM owns stage and amount.';
COMMENT ON COLUMN public.opportunities.stage IS 'prospecting | qualification | proposal | negotiation | closed_won | closed_lost';
