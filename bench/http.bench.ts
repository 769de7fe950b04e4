/**
 * HTTP figures against a real server process over the billing bench database (1,000,000 jobs by default):
 *  - GET /me (default view, last 7 days) p50/p95 over 600 sequential requests by 20 users (target p95 <= 50 ms)
 *  - GET /me.csv of the CSV user's jobs (100,000 rows by default): rows/s (target >= 100,000) and the
 *    server's RSS growth (target < 50 MB)
 *  - GET /formula with If-None-Match (the 304 path): requests/s with wrk when installed (target >= 10,000)
 *   npx tsx bench/http.bench.ts [--csv-jobs 100000 --users 500 --jobs 890000 --database hb_bench ...]
 * Options: bench/lib/billing-data.ts. Every password is the username.
 * The server logs at warn (one JSON line per request at info costs throughput, not latency).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { spawnServer } from '../test/support/spawn-server.js';
import { CSV_USER, ensureBillingDatabase, parseBillingArgs, spreadBenchUsers } from './lib/billing-data.js';

const options = parseBillingArgs(process.argv.slice(2));
const url = await ensureBillingDatabase(options);
const port = 18_000 + Math.floor(Math.random() * 1000);
const base = `http://127.0.0.1:${port}`;
const server = await spawnServer({
  DATABASE_URL: url,
  PORT: String(port),
  LOG_LEVEL: 'warn',
  DEMO_SEED: '0',
  APP_TZ: process.env.APP_TZ ?? 'UTC',
});
const serverPid = server.process.pid as number;

function rssMb(): number {
  const status = readFileSync(`/proc/${serverPid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

function cookiesOf(response: Response): string {
  return response.headers
    .getSetCookie()
    .map((cookie) => cookie.split(';')[0])
    .join('; ');
}

async function signIn(username: string): Promise<string> {
  const form = await fetch(`${base}/login`, { headers: { Accept: 'text/html' } });
  const token = /name="csrf_token" value="([^"]+)"/.exec(await form.text())?.[1] ?? '';
  const cookie = cookiesOf(form);
  const response = await fetch(`${base}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { Cookie: cookie, 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'text/html' },
    body: new URLSearchParams({ username, password: username, csrf_token: token }),
  });
  if (response.status !== 302) throw new Error(`sign-in of ${username} answered ${response.status}`);
  return cookiesOf(response) || cookie;
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? 0;

try {
  // /me latency.
  const users = spreadBenchUsers(20, options.users);
  const cookies = await Promise.all(users.map(signIn));
  for (const cookie of cookies) await (await fetch(`${base}/me`, { headers: { Cookie: cookie } })).text(); // warm-up
  const latencies: number[] = [];
  let rowsSeen = 0;
  for (let index = 0; index < 600; index++) {
    const started = performance.now();
    const response = await fetch(`${base}/me`, { headers: { Cookie: cookies[index % cookies.length] as string } });
    const body = await response.text();
    latencies.push(performance.now() - started);
    if (response.status !== 200) throw new Error(`/me answered ${response.status}`);
    rowsSeen += (body.match(/<tr>\s*<td data-label="Job">/g) ?? []).length;
  }
  latencies.sort((a, b) => a - b);
  console.log(
    `/me (detail, last 7 days, ~${Math.round(rowsSeen / 600)} rows a page): p50 ${percentile(latencies, 0.5).toFixed(1)} ms, ` +
      `p95 ${percentile(latencies, 0.95).toFixed(1)} ms, p99 ${percentile(latencies, 0.99).toFixed(1)} ms (target p95 <= 50 ms)`,
  );
  const aggregate: number[] = [];
  for (let index = 0; index < 200; index++) {
    const started = performance.now();
    await (
      await fetch(`${base}/me?view=aggregate`, { headers: { Cookie: cookies[index % cookies.length] as string } })
    ).text();
    aggregate.push(performance.now() - started);
  }
  aggregate.sort((a, b) => a - b);
  console.log(
    `/me?view=aggregate: p50 ${percentile(aggregate, 0.5).toFixed(1)} ms, p95 ${percentile(aggregate, 0.95).toFixed(1)} ms`,
  );

  // /me.csv of all the CSV user's jobs (they end within the last 30 days).
  const heavy = await signIn(CSV_USER);
  const today = new Date().toISOString().slice(0, 10);
  const start = new Date(Date.now() - 40 * 86_400_000).toISOString().slice(0, 10);
  const rssBefore = rssMb();
  let rssPeak = rssBefore;
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, rssMb());
  }, 20);
  const started = performance.now();
  const response = await fetch(`${base}/me.csv?start=${start}&end=${today}`, { headers: { Cookie: heavy } });
  let newlines = 0;
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    for (const byte of value) if (byte === 10) newlines += 1;
  }
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  const rows = newlines - 1;
  if (response.status !== 200) throw new Error(`/me.csv answered ${response.status}`);
  if (rows !== options.csvJobs)
    console.warn(
      `/me.csv gave ${rows} rows, not the ${options.csvJobs} jobs of ${CSV_USER}: a database built over 10 days ago has jobs before the 40-day window (drop it to rebuild)`,
    );
  console.log(
    `/me.csv: ${rows} rows in ${seconds.toFixed(2)} s = ${Math.round(rows / seconds).toLocaleString('en')} rows/s ` +
      `(target >= 100,000); server RSS ${rssBefore.toFixed(0)} MB -> peak ${rssPeak.toFixed(0)} MB, ` +
      `+${(rssPeak - rssBefore).toFixed(1)} MB (target < 50 MB)`,
  );

  // /formula 304 path.
  const formula = await fetch(`${base}/formula`);
  const etag = formula.headers.get('etag') ?? '';
  const check = await fetch(`${base}/formula`, { headers: { 'If-None-Match': etag } });
  if (check.status !== 304) throw new Error(`/formula with its ETag answered ${check.status}`);
  if (existsSync('/usr/bin/wrk')) {
    const output = execFileSync(
      '/usr/bin/wrk',
      ['-t2', '-c64', '-d10s', '-H', `If-None-Match: ${etag}`, `${base}/formula`],
      { encoding: 'utf8' },
    );
    const rate = /Requests\/sec:\s+([\d.]+)/.exec(output)?.[1];
    const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? '0';
    console.log(
      `/formula 304 path (wrk -t2 -c64 -d10s, same 2-core machine): ${rate} req/s, non-2xx/3xx ${non2xx} (target >= 10,000)`,
    );
  } else {
    console.log('/formula: wrk is not installed (apt-get install wrk); skipped');
  }
} finally {
  await server.stop();
}
