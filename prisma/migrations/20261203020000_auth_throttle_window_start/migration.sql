-- The sign-in throttle rows are pruned once their window and lock have ended (docs/security.md,
-- "Lockout"), in batches of 1,000, the oldest windows first. Without an index every batch reads
-- and sorts the whole table. Measured on a 2-core machine (PostgreSQL 15) with 1,000,000 expired
-- rows mixed among 1,000,000 live ones: 265 s to prune them (up to 1.1 s a batch, holding its
-- rows' locks), and 172 ms for a prune that finds nothing. Through these indexes: 8.4 s (at most
-- 128 ms a batch), and 3 ms.
--
-- Built inside the migration's transaction (no CONCURRENTLY), so sign-ins wait while it builds:
-- 1.6 s for 2,000,000 rows there, on a table never pruned before.

-- CreateIndex
CREATE INDEX "auth_throttle_window_start_idx" ON "auth_throttle"("window_start");

-- CreateIndex
CREATE INDEX "auth_network_throttle_window_start_idx" ON "auth_network_throttle"("window_start");
