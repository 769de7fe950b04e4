-- Raised each time an admin disables the account (docs/security.md, "Sessions"). A session
-- carries the epoch its sign-in read together with the account's enabled flag, and is served
-- only while it is still the user's. Disabling signs out the session rows that exist; a sign-in
-- whose password check had read the account as enabled wrote its row just after, and that row
-- was signed in again once the account was enabled. Existing rows start at 0, as do the
-- sessions that carry none (signed in before this column), which are not checked.
ALTER TABLE "users" ADD COLUMN "session_epoch" INTEGER NOT NULL DEFAULT 0;
