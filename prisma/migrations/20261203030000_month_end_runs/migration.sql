-- The month-end run answers at once and goes on in the background (docs/billing.md, "Month-end
-- run"): it took 76 s at 465 users and 801,000 jobs, longer than a reverse proxy's usual 60 s read
-- timeout. Its progress and outcome are kept here, not in the process that runs it, so that any
-- worker or replica can serve its status page.
--
-- Only one run runs at a time (the session advisory lock ADVISORY_LOCK_KEYS.monthEnd); the partial
-- unique index below says the same of the rows. A run that finds a row still `running` while it
-- holds the lock marks it `interrupted` before it inserts its own.

-- CreateEnum
CREATE TYPE "MonthEndOutcome" AS ENUM ('running', 'succeeded', 'failed', 'interrupted');

-- CreateTable
CREATE TABLE "month_end_runs" (
    "id" SERIAL NOT NULL,
    "billed_through" DATE NOT NULL,
    "started_by" VARCHAR(64) NOT NULL,
    "started_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finished_at" TIMESTAMPTZ(3),
    "outcome" "MonthEndOutcome" NOT NULL DEFAULT 'running',
    "users_total" INTEGER,
    "users_done" INTEGER NOT NULL DEFAULT 0,
    "receipt_count" INTEGER NOT NULL DEFAULT 0,
    "no_charge_count" INTEGER NOT NULL DEFAULT 0,
    "totals" JSONB NOT NULL DEFAULT '[]',
    "skipped" JSONB NOT NULL DEFAULT '[]',
    "error" TEXT,

    CONSTRAINT "month_end_runs_pkey" PRIMARY KEY ("id")
);

-- At most one run is running.
CREATE UNIQUE INDEX "month_end_runs_one_running" ON "month_end_runs" ((true)) WHERE "outcome" = 'running';
