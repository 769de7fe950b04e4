/**
 * Resolves with whether `promise` resolved within `ms` (its rejection, if first, is thrown), leaving no timer behind: a
 * shutdown step that waits on something which may never answer (a frozen database, a stopped
 * child process) must go on after its grace period without keeping the event loop alive.
 */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}
