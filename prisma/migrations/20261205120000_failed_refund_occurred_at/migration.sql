-- When the provider made the event that said this refund failed (Stripe's event `created`), null when
-- it did not say (the dummy provider): a refund total the provider made before it still counts the
-- refund, though it may be delivered after the failure (docs/payments.md, "A refund that failed").
ALTER TABLE "payment_failed_refunds" ADD COLUMN "failure_occurred_at" TIMESTAMPTZ(3);
