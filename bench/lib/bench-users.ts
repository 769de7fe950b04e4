/** The demo logins the data generator also creates (password = username). */
export const NAMED_USERS = [
  { username: 'admin', role: 'admin' as const },
  { username: 'alice', role: 'user' as const },
  { username: 'bob', role: 'user' as const },
];

/** The n-th (1-based) generated user: bench001, bench002, ... bench1000; the password is the username. */
export function benchUsername(n: number): string {
  return `bench${String(n).padStart(3, '0')}`;
}

/** The user a virtual user signs in as on its k-th sign-in: VUs never share one while vus <= users. */
export function benchUserFor(vuIndex: number, signInCount: number, vus: number, users: number): string {
  return benchUsername(((vuIndex + signInCount * vus) % users) + 1);
}
