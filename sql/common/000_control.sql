-- trueup control objects shared by every source database (crm, billing, erp), applied before the
-- system's own schema: the updated_at trigger function and the tables Debezium writes and reads.

-- ---------------------------------------------------------------------------
-- updated_at maintenance (one function per database)
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION public.trueup_set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

-- ---------------------------------------------------------------------------
-- Debezium support tables
-- ---------------------------------------------------------------------------
-- Written by Debezium's heartbeat action query
--   INSERT INTO public.trueup_heartbeat (id, ts) VALUES (1, now())
--   ON CONFLICT (id) DO UPDATE SET ts = EXCLUDED.ts
-- so heartbeats carry a real source commit time. trueup recognises it and
-- never dead-letters its events. Shape is fixed: no created_at/updated_at.
CREATE TABLE IF NOT EXISTS public.trueup_heartbeat (
    id integer     NOT NULL,
    ts timestamptz NOT NULL,
    CONSTRAINT trueup_heartbeat_pkey PRIMARY KEY (id)
);

-- Debezium's source signalling table (signal.data.collection). Shape is the
-- one Debezium documents; do not add columns.
CREATE TABLE IF NOT EXISTS public.debezium_signal (
    id   varchar(42)   NOT NULL,
    type varchar(32)   NOT NULL,
    data varchar(2048) NULL,
    CONSTRAINT debezium_signal_pkey PRIMARY KEY (id)
);

ALTER TABLE public.trueup_heartbeat REPLICA IDENTITY FULL;
ALTER TABLE public.debezium_signal  REPLICA IDENTITY FULL;

COMMENT ON TABLE public.trueup_heartbeat IS 'Debezium heartbeat action query target; one row, id = 1.';
COMMENT ON TABLE public.debezium_signal IS 'Debezium signalling table.';
