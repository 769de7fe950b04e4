-- A release from before 20261205100000_failed_refund_in_reported_total, still serving between
-- `npm run db:migrate` and its restart (docs/operations.md, "Upgrading"), records a refund that failed
-- without is_in_reported_total: it took the default, false, so this release read the money of a
-- reported refund that then failed as returned to the payer (1.00 THB refunded where the same events
-- recorded before the migration read 0.00). Without a default, a row that leaves it out gets what
-- that migration gives the rows before it: counted when the payment's refund was already reported.
-- This release always writes the column, so the trigger never changes what it records.
ALTER TABLE "payment_failed_refunds" ALTER COLUMN "is_in_reported_total" DROP DEFAULT;

CREATE FUNCTION "payment_failed_refunds_counted_as_before"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW."is_in_reported_total" IS NULL THEN
    NEW."is_in_reported_total" := EXISTS (
      SELECT 1 FROM "payments" p WHERE p."id" = NEW."payment_id" AND p."refunded_at" IS NOT NULL);
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER "payment_failed_refunds_counted_as_before"
  BEFORE INSERT ON "payment_failed_refunds"
  FOR EACH ROW EXECUTE FUNCTION "payment_failed_refunds_counted_as_before"();
