-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateEnum
CREATE TYPE "Role" AS ENUM ('admin', 'user');

-- CreateEnum
CREATE TYPE "ReceiptStatus" AS ENUM ('pending', 'paid', 'void');

-- CreateEnum
CREATE TYPE "PaymentStatus" AS ENUM ('pending', 'succeeded', 'failed', 'canceled', 'needs_review');

-- CreateEnum
CREATE TYPE "IngestionOutcome" AS ENUM ('running', 'success', 'partial', 'failed');

-- CreateTable
CREATE TABLE "users" (
    "id" SERIAL NOT NULL,
    "username" VARCHAR(64) NOT NULL,
    "password_hash" TEXT NOT NULL,
    "role" "Role" NOT NULL DEFAULT 'user',
    "is_disabled" BOOLEAN NOT NULL DEFAULT false,
    "password_changed_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "users_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "pricing_tiers" (
    "id" SERIAL NOT NULL,
    "name" VARCHAR(32) NOT NULL,
    "description" TEXT NOT NULL DEFAULT '',
    "is_default" BOOLEAN NOT NULL DEFAULT false,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "pricing_tiers_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "pricing_rates" (
    "id" SERIAL NOT NULL,
    "tier_id" INTEGER NOT NULL,
    "cpu_per_hour" DECIMAL(18,6) NOT NULL,
    "gpu_per_hour" DECIMAL(18,6) NOT NULL,
    "mem_per_hour" DECIMAL(18,6) NOT NULL,
    "currency" CHAR(3) NOT NULL,
    "effective_from" TIMESTAMPTZ(3) NOT NULL,
    "created_by" VARCHAR(64),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "pricing_rates_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "tier_overrides" (
    "username" VARCHAR(64) NOT NULL,
    "tier_id" INTEGER NOT NULL,
    "created_by" VARCHAR(64),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "tier_overrides_pkey" PRIMARY KEY ("username")
);

-- CreateTable
CREATE TABLE "slurm_jobs" (
    "id" BIGSERIAL NOT NULL,
    "cluster" VARCHAR(64) NOT NULL,
    "job_id" VARCHAR(32) NOT NULL,
    "job_key" VARCHAR(48) NOT NULL,
    "array_job_id" VARCHAR(32),
    "array_task_id" VARCHAR(32),
    "name" VARCHAR(256) NOT NULL DEFAULT '',
    "user" VARCHAR(64) NOT NULL,
    "account" VARCHAR(64) NOT NULL DEFAULT '',
    "partition" VARCHAR(64) NOT NULL DEFAULT '',
    "qos" VARCHAR(64) NOT NULL DEFAULT '',
    "state" VARCHAR(32) NOT NULL,
    "is_terminal" BOOLEAN NOT NULL,
    "exit_code" VARCHAR(16),
    "submit_at" TIMESTAMPTZ(3),
    "start_at" TIMESTAMPTZ(3),
    "end_at" TIMESTAMPTZ(3),
    "elapsed_sec" INTEGER NOT NULL DEFAULT 0,
    "timelimit_sec" INTEGER,
    "alloc_cpus" INTEGER NOT NULL DEFAULT 0,
    "alloc_mem_mb" DECIMAL(18,3) NOT NULL DEFAULT 0,
    "alloc_gpus" INTEGER NOT NULL DEFAULT 0,
    "alloc_nodes" INTEGER NOT NULL DEFAULT 0,
    "alloc_billing" DECIMAL(18,4),
    "req_cpus" INTEGER NOT NULL DEFAULT 0,
    "req_mem_mb" DECIMAL(18,3) NOT NULL DEFAULT 0,
    "req_gpus" INTEGER NOT NULL DEFAULT 0,
    "alloc_tres" TEXT NOT NULL DEFAULT '',
    "req_tres" TEXT NOT NULL DEFAULT '',
    "cpu_time_sec" BIGINT,
    "total_cpu_sec" DECIMAL(18,3),
    "step_mem_gb_hours" DECIMAL(18,6),
    "max_rss_bytes" BIGINT,
    "energy_joules" BIGINT,
    "step_count" INTEGER NOT NULL DEFAULT 0,
    "steps" JSONB,
    "node_list" TEXT NOT NULL DEFAULT '',
    "source" VARCHAR(16) NOT NULL,
    "ingested_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "slurm_jobs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ingestion_runs" (
    "id" SERIAL NOT NULL,
    "trigger" VARCHAR(16) NOT NULL,
    "source" VARCHAR(16),
    "source_notes" JSONB,
    "window_start" TIMESTAMPTZ(3) NOT NULL,
    "window_end" TIMESTAMPTZ(3) NOT NULL,
    "seen" INTEGER NOT NULL DEFAULT 0,
    "inserted" INTEGER NOT NULL DEFAULT 0,
    "updated" INTEGER NOT NULL DEFAULT 0,
    "skipped" INTEGER NOT NULL DEFAULT 0,
    "outcome" "IngestionOutcome" NOT NULL DEFAULT 'running',
    "error" TEXT,
    "started_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finished_at" TIMESTAMPTZ(3),
    "duration_ms" INTEGER,

    CONSTRAINT "ingestion_runs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "receipts" (
    "id" SERIAL NOT NULL,
    "username" VARCHAR(64) NOT NULL,
    "billed_through" DATE NOT NULL,
    "window_start" TIMESTAMPTZ(3),
    "window_end" TIMESTAMPTZ(3),
    "status" "ReceiptStatus" NOT NULL DEFAULT 'pending',
    "total" DECIMAL(20,4) NOT NULL,
    "currency" CHAR(3) NOT NULL,
    "tier_name" VARCHAR(32) NOT NULL,
    "rate_id" INTEGER,
    "rates_snapshot" JSONB NOT NULL,
    "rates_locked_at" TIMESTAMPTZ(3) NOT NULL,
    "scope" VARCHAR(8) NOT NULL DEFAULT 'user',
    "created_by" VARCHAR(64) NOT NULL,
    "paid_at" TIMESTAMPTZ(3),
    "payment_method" VARCHAR(32),
    "tx_ref" VARCHAR(128),
    "void_reason" TEXT,
    "voided_at" TIMESTAMPTZ(3),
    "voided_by" VARCHAR(64),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "receipts_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "receipt_items" (
    "id" BIGSERIAL NOT NULL,
    "receipt_id" INTEGER NOT NULL,
    "slurm_job_id" BIGINT NOT NULL,
    "cluster" VARCHAR(64) NOT NULL,
    "job_key" VARCHAR(48) NOT NULL,
    "display_job_id" VARCHAR(48) NOT NULL,
    "cpu_hours" DECIMAL(20,6) NOT NULL,
    "gpu_hours" DECIMAL(20,6) NOT NULL,
    "mem_gb_hours" DECIMAL(20,6) NOT NULL,
    "cost" DECIMAL(20,4) NOT NULL,
    "is_voided" BOOLEAN NOT NULL DEFAULT false,

    CONSTRAINT "receipt_items_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "payments" (
    "id" SERIAL NOT NULL,
    "receipt_id" INTEGER NOT NULL,
    "provider" VARCHAR(32) NOT NULL,
    "status" "PaymentStatus" NOT NULL DEFAULT 'pending',
    "amount_minor" BIGINT NOT NULL,
    "currency" CHAR(3) NOT NULL,
    "external_payment_id" VARCHAR(128),
    "external_session_id" VARCHAR(128),
    "checkout_url" TEXT,
    "idempotency_key" VARCHAR(128) NOT NULL,
    "review_reason" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "payments_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "payment_events" (
    "id" BIGSERIAL NOT NULL,
    "provider" VARCHAR(32) NOT NULL,
    "external_event_id" VARCHAR(128) NOT NULL,
    "type" VARCHAR(64) NOT NULL,
    "payment_id" INTEGER,
    "signature_verdict" VARCHAR(16) NOT NULL,
    "outcome" VARCHAR(16) NOT NULL,
    "raw_payload" TEXT NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "payment_events_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "audit_log" (
    "id" BIGSERIAL NOT NULL,
    "ts" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "actor" VARCHAR(64) NOT NULL,
    "ip" VARCHAR(64),
    "user_agent" VARCHAR(512),
    "action" VARCHAR(64) NOT NULL,
    "target" VARCHAR(256),
    "status" VARCHAR(16) NOT NULL,
    "details" JSONB,
    "prev_hash" CHAR(64) NOT NULL,
    "hash" CHAR(64) NOT NULL,

    CONSTRAINT "audit_log_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "auth_throttle" (
    "id" SERIAL NOT NULL,
    "username" VARCHAR(64) NOT NULL,
    "ip" VARCHAR(64) NOT NULL,
    "window_start" TIMESTAMPTZ(3) NOT NULL,
    "failure_count" INTEGER NOT NULL DEFAULT 0,
    "locked_until" TIMESTAMPTZ(3),

    CONSTRAINT "auth_throttle_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "session" (
    "sid" VARCHAR NOT NULL,
    "sess" JSONB NOT NULL,
    "expire" TIMESTAMP(6) NOT NULL,

    CONSTRAINT "session_pkey" PRIMARY KEY ("sid")
);

-- CreateIndex
CREATE UNIQUE INDEX "users_username_key" ON "users"("username");

-- CreateIndex
CREATE UNIQUE INDEX "pricing_tiers_name_key" ON "pricing_tiers"("name");

-- CreateIndex
CREATE UNIQUE INDEX "pricing_rates_tier_id_effective_from_key" ON "pricing_rates"("tier_id", "effective_from");

-- CreateIndex
CREATE INDEX "slurm_jobs_user_end_at_idx" ON "slurm_jobs"("user", "end_at");

-- CreateIndex
CREATE INDEX "slurm_jobs_cluster_job_key_idx" ON "slurm_jobs"("cluster", "job_key");

-- CreateIndex
CREATE UNIQUE INDEX "slurm_jobs_cluster_job_id_key" ON "slurm_jobs"("cluster", "job_id");

-- CreateIndex
CREATE INDEX "ingestion_runs_outcome_window_end_idx" ON "ingestion_runs"("outcome", "window_end" DESC);

-- CreateIndex
CREATE INDEX "ingestion_runs_started_at_idx" ON "ingestion_runs"("started_at" DESC);

-- CreateIndex
CREATE INDEX "receipts_username_created_at_idx" ON "receipts"("username", "created_at" DESC);

-- CreateIndex
CREATE INDEX "receipts_status_created_at_idx" ON "receipts"("status", "created_at" DESC);

-- CreateIndex
CREATE INDEX "receipt_items_receipt_id_idx" ON "receipt_items"("receipt_id");

-- CreateIndex
CREATE INDEX "receipt_items_slurm_job_id_idx" ON "receipt_items"("slurm_job_id");

-- CreateIndex
CREATE UNIQUE INDEX "payments_idempotency_key_key" ON "payments"("idempotency_key");

-- CreateIndex
CREATE INDEX "payments_receipt_id_idx" ON "payments"("receipt_id");

-- CreateIndex
CREATE INDEX "payments_status_created_at_idx" ON "payments"("status", "created_at" DESC);

-- CreateIndex
CREATE UNIQUE INDEX "payments_provider_external_payment_id_key" ON "payments"("provider", "external_payment_id");

-- CreateIndex
CREATE INDEX "payment_events_received_at_idx" ON "payment_events"("received_at" DESC);

-- CreateIndex
CREATE UNIQUE INDEX "payment_events_provider_external_event_id_key" ON "payment_events"("provider", "external_event_id");

-- CreateIndex
CREATE UNIQUE INDEX "audit_log_hash_key" ON "audit_log"("hash");

-- CreateIndex
CREATE INDEX "audit_log_ts_idx" ON "audit_log"("ts" DESC);

-- CreateIndex
CREATE INDEX "audit_log_actor_ts_idx" ON "audit_log"("actor", "ts" DESC);

-- CreateIndex
CREATE INDEX "audit_log_action_ts_idx" ON "audit_log"("action", "ts" DESC);

-- CreateIndex
CREATE UNIQUE INDEX "auth_throttle_username_ip_key" ON "auth_throttle"("username", "ip");

-- CreateIndex
CREATE INDEX "IDX_session_expire" ON "session"("expire");

-- AddForeignKey
ALTER TABLE "pricing_rates" ADD CONSTRAINT "pricing_rates_tier_id_fkey" FOREIGN KEY ("tier_id") REFERENCES "pricing_tiers"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "tier_overrides" ADD CONSTRAINT "tier_overrides_tier_id_fkey" FOREIGN KEY ("tier_id") REFERENCES "pricing_tiers"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "receipt_items" ADD CONSTRAINT "receipt_items_receipt_id_fkey" FOREIGN KEY ("receipt_id") REFERENCES "receipts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "payments" ADD CONSTRAINT "payments_receipt_id_fkey" FOREIGN KEY ("receipt_id") REFERENCES "receipts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "payment_events" ADD CONSTRAINT "payment_events_payment_id_fkey" FOREIGN KEY ("payment_id") REFERENCES "payments"("id") ON DELETE SET NULL ON UPDATE CASCADE;


-- Hand-written: what Prisma's schema language cannot express.

-- A job is never billed twice: one live receipt item per (cluster, job key).
-- Voiding a receipt flips is_voided on its items, which releases the jobs.
CREATE UNIQUE INDEX "receipt_items_live_job_key" ON "receipt_items" ("cluster", "job_key") WHERE NOT "is_voided";

-- At most one default pricing tier.
CREATE UNIQUE INDEX "pricing_tiers_one_default" ON "pricing_tiers" ("is_default") WHERE "is_default";

-- The audit log is append-only: the database itself refuses edits.
CREATE FUNCTION "audit_log_refuse_change"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER "audit_log_append_only"
  BEFORE UPDATE OR DELETE ON "audit_log"
  FOR EACH ROW EXECUTE FUNCTION "audit_log_refuse_change"();
CREATE TRIGGER "audit_log_no_truncate"
  BEFORE TRUNCATE ON "audit_log"
  FOR EACH STATEMENT EXECUTE FUNCTION "audit_log_refuse_change"();
