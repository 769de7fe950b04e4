-- The money a provider reported receiving for a payment: amount (minor units of its own
-- currency) and currency, written from the success webhook in the event's transaction. It can
-- differ from the amount due (amount_minor, currency) when an admin accepts a held short or
-- over payment; pages, the paid receipts CSV and the billing totals show it, so finance can
-- reconcile with the bank. NULL: no success was reported (pending, failed, canceled), or the
-- provider did not say how much or in what currency.
ALTER TABLE "payments"
    ADD COLUMN "received_minor" BIGINT,
    ADD COLUMN "received_currency" CHAR(3),
    ADD CONSTRAINT "payments_received_whole" CHECK (("received_minor" IS NULL) = ("received_currency" IS NULL)),
    ADD CONSTRAINT "payments_received_not_negative" CHECK ("received_minor" >= 0);

-- Existing rows. A succeeded payment was only ever marked so when the reported amount and
-- currency equalled the amount due: its received amount is the amount due.
UPDATE "payments"
   SET "received_minor" = "amount_minor", "received_currency" = "currency"
 WHERE "status" = 'succeeded';

-- A held (or resolved) payment is a reported success too. Without a mismatch, the money
-- reported was the amount due; with one, the reason says what was paid, written with the
-- currency's decimals ("paid 1.00 THB but 34.77 THB was due", "paid 1,200 JPY but ..."), so
-- its digits without separators are the minor units. A reason that does not say it (an unknown
-- amount, or a hold for a voided receipt that replaced the reason) leaves it NULL: unknown.
UPDATE "payments"
   SET "received_minor" = "amount_minor", "received_currency" = "currency"
 WHERE "status" IN ('needs_review', 'resolved')
   AND NOT "has_amount_mismatch";

UPDATE "payments" p
   SET "received_minor" = replace(replace(m.paid[1], ',', ''), '.', '')::bigint,
       "received_currency" = m.paid[2]
  FROM (SELECT "id", regexp_match("review_reason", '(?:^|; )paid ([0-9][0-9,]*(?:\.[0-9]+)?) ([A-Z]{3}) but ') AS paid
          FROM "payments"
         WHERE "status" IN ('needs_review', 'resolved') AND "has_amount_mismatch") m
 WHERE p."id" = m."id"
   AND m.paid IS NOT NULL;
