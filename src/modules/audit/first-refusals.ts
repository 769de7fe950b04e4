/**
 * Which refusals this process has audited, so that a refusal repeated costs the audit log one
 * entry, not one each. A refusal that costs its client nothing (a sign-in refused unchecked by a
 * lock, an admin page refused to a researcher) written to the log every time let a client append
 * to it, which nothing may delete, as fast as it could send. Each key is held until its end: a
 * refusal under a key held at that moment is not audited (the caller counts it in a metric, as it
 * counts every refusal). Kept in the process, not the database: with WEB_CONCURRENCY workers a key
 * is audited at most once per worker, and again after a restart. Bounded: past `max` keys, those
 * whose end has passed go, then the oldest.
 */
export class FirstRefusals {
  private readonly ends = new Map<string, number>();

  constructor(private readonly max = 10_000) {}

  /**
   * True when any of `keys` is not held at `now` (audit this refusal); each such key is then held
   * until `until`. A key whose end has passed is not held.
   */
  isFirst(keys: string[], until: Date, now: Date): boolean {
    const fresh = keys.filter((key) => (this.ends.get(key) ?? Number.NEGATIVE_INFINITY) <= now.getTime());
    if (fresh.length === 0) return false;
    if (this.ends.size + fresh.length > this.max) this.forgetEnded(now);
    for (const key of fresh) {
      // Deleted first, so that a key held again is the newest in insertion order.
      this.ends.delete(key);
      this.ends.set(key, until.getTime());
    }
    return true;
  }

  private forgetEnded(now: Date) {
    for (const [key, end] of this.ends) if (end <= now.getTime()) this.ends.delete(key);
    // Insertion order is oldest first.
    for (const key of this.ends.keys()) {
      if (this.ends.size < this.max / 2) break;
      this.ends.delete(key);
    }
  }
}
