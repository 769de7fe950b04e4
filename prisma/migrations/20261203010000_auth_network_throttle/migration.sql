-- Failed sign-ins per client network (an IPv4 address, or an IPv6 /64) across every
-- username, so one client cannot spray a password over all accounts (docs/security.md,
-- "Lockout"). Counted in the same statement as auth_throttle, before the password is checked.
CREATE TABLE "auth_network_throttle" (
    "network" VARCHAR(64) NOT NULL,
    "window_start" TIMESTAMPTZ(3) NOT NULL,
    "failure_count" INTEGER NOT NULL DEFAULT 0,
    "locked_until" TIMESTAMPTZ(3),

    CONSTRAINT "auth_network_throttle_pkey" PRIMARY KEY ("network")
);
