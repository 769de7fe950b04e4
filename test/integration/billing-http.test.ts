import { Prisma } from '@prisma/client';
import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import * as receiptsRepository from '../../src/modules/receipts/receipts.repository.js';
import { amountDueOf, buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { elementById, refusedFormStateOf } from '../support/html.js';
import { sessionsWaitingForLocks, transactionsWaitedOn } from '../support/lock-waits.js';
import { monthEndRunPathOf, waitForMonthEndRun } from '../support/month-end.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp, metricValue } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
// 2025-09-20 12:00 in Bangkok, moving with the real clock so rate changes get distinct instants.
const STARTED = Date.now();
const now = () => new Date(Date.parse('2025-09-20T05:00:00Z') + (Date.now() - STARTED));
const env = { APP_TZ: 'Asia/Bangkok' };
const metrics = createMetrics();
let app: ReturnType<typeof buildTestApp>;
let alice: Agent;
let bob: Agent;
let admin: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildUser(db.prisma, { username: 'bob', password: 'bob-password' });
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  app = buildTestApp(db, { env, now, metrics });
  alice = await signInAs(app, 'alice', 'alice-password');
  bob = await signInAs(app, 'bob', 'bob-password');
  admin = await signInAs(app, 'boss', 'boss-password');
});
afterAll(() => db?.drop());

async function clearJobs() {
  await db.prisma.monthEndRun.deleteMany();
  await db.prisma.receiptItem.deleteMany();
  await db.prisma.receipt.deleteMany();
  await db.prisma.slurmJob.deleteMany();
}

const html = (agent: Agent, path: string) => agent.get(path).set('Accept', 'text/html');

async function createReceipt(agent: Agent, before: string) {
  return agent
    .post('/me/receipt')
    .set('Accept', 'text/html')
    .type('form')
    .send({ before, csrf_token: await csrfTokenOf(agent, '/me') });
}

/** The address of the receipt a browser's form was sent to, without the fragment it opens at. */
function receiptPathOf(created: { headers: Record<string, string> }): string {
  const location = created.headers.location as string;
  expect(location).toMatch(/^\/me\/receipts\/\d+#receipt$/);
  return location.slice(0, location.indexOf('#'));
}

/** Bills the agent's jobs that ended before `before`; the new receipt's id. */
async function billJobsBefore(agent: Agent, before: string): Promise<number> {
  const created = await createReceipt(agent, before);
  expect(created.status, created.text.slice(0, 200)).toBe(303);
  return Number(receiptPathOf(created).split('/').pop());
}
const json = (agent: Agent, path: string) => agent.get(path).set('Accept', 'application/json');

/** The flash the layout shows first thing in <main>, if any. */
const flashOf = (page: string) =>
  /<main class="content"[^>]*>\s*<div class="alert \w+" role="status">([^<]*)<\/div>/.exec(page)?.[1];

describe('pages behind a session', () => {
  it('carry no ETag: they are no-store, so hashing every answer for one would be work no cache uses', async () => {
    const page = await html(alice, '/me').expect(200);
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.headers.etag).toBeUndefined();
    const json = await alice.get('/me').set('Accept', 'application/json').expect(200);
    expect(json.headers.etag).toBeUndefined();
  });
});

describe('GET /formula', () => {
  it('answers the default tier with a strong ETag, no-cache, and 304 for the current tag', async () => {
    const first = await request(app).get('/formula').expect(200);
    expect(first.body).toEqual({
      type: 'mu',
      unit: 'per-hour',
      rates: { cpu: '0.50', gpu: '12.00', mem: '0.05' },
      currency: 'THB',
    });
    expect(first.headers.etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    expect(first.headers['cache-control']).toBe('no-cache');
    const cached = await request(app)
      .get('/formula?type=mu')
      .set('If-None-Match', first.headers.etag as string)
      .expect(304);
    expect(cached.text).toBe('');
    expect(cached.headers.etag).toBe(first.headers.etag);
    const gov = await request(app).get('/formula?type=gov').expect(200);
    expect(gov.body.rates).toEqual({ cpu: '0.80', gpu: '18.00', mem: '0.08' });
    expect(gov.headers.etag).not.toBe(first.headers.etag);
    await request(app)
      .get('/formula?type=gov')
      .set('If-None-Match', first.headers.etag as string)
      .expect(200);
  });

  it('refuses an unknown tier with a JSON 400', async () => {
    const response = await request(app).get('/formula?type=platinum').expect(400);
    expect(response.body).toEqual({ error: expect.stringMatching(/^Unknown tier "platinum"/), code: 400 });
  });

  it('answers an empty type as a type left out: the default tier, with its ETag and 304', async () => {
    const plain = await request(app).get('/formula').expect(200);
    for (const query of ['?type=', '?type=%20%20', '?type']) {
      const empty = await request(app).get(`/formula${query}`).expect(200);
      expect(empty.body, query).toEqual(plain.body);
      expect(empty.headers.etag, query).toBe(plain.headers.etag);
      const cached = await request(app)
        .get(`/formula${query}`)
        .set('If-None-Match', plain.headers.etag as string)
        .expect(304);
      expect(cached.text, query).toBe('');
      expect(cached.headers.etag, query).toBe(plain.headers.etag);
    }
    // A type given twice is still refused, empty or not.
    const twice = await request(app).get('/formula?type=&type=gov').expect(400);
    expect(twice.body).toEqual({ error: expect.stringContaining('type'), code: 400 });
  });

  it('refuses a NUL character with the message every other route gives, not as an unknown tier', async () => {
    for (const query of ['?type=%00', '?type=mu%00', '?%00=mu', '?type=mu&x=%00']) {
      for (const etag of [undefined, '*']) {
        const call = request(app).get(`/formula${query}`);
        if (etag) call.set('If-None-Match', etag);
        const response = await call.expect(400);
        expect(response.body, query).toEqual({
          error: 'The request contains a NUL character (%00), which no field accepts.',
          code: 400,
        });
      }
    }
    // The same message as a signed-in route's.
    expect((await alice.get('/me?start=%00').set('Accept', 'application/json').expect(400)).body.error).toBe(
      'The request contains a NUL character (%00), which no field accepts.',
    );
  });
});

describe('POST /formula', () => {
  async function post(agent: Agent, body: unknown) {
    return agent
      .post('/formula')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send(body as object);
  }

  it('lets an admin set rates: new ETag, history kept, audited; other workers follow their next check', async () => {
    const otherWorker = buildTestApp(db, { env: { ...env, PRICING_CACHE_CHECK_MS: '0' }, now });
    const before = await request(app).get('/formula?type=private').expect(200);
    const otherBefore = await request(otherWorker).get('/formula?type=private').expect(200);
    expect(otherBefore.headers.etag).toBe(before.headers.etag);

    const response = await post(admin, { type: 'private', cpu: 1.75, gpu: 36, mem: '0.2' });
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      ok: true,
      updated: { type: 'private', cpu: '1.75', gpu: '36.00', mem: '0.20', currency: 'THB' },
    });

    const after = await request(app).get('/formula?type=private').expect(200);
    expect(after.body.rates).toEqual({ cpu: '1.75', gpu: '36.00', mem: '0.20' });
    expect(after.headers.etag).not.toBe(before.headers.etag);
    await request(app)
      .get('/formula?type=private')
      .set('If-None-Match', before.headers.etag as string)
      .expect(200);
    expect((await request(otherWorker).get('/formula?type=private')).headers.etag).toBe(after.headers.etag);
    // Other tiers' tags are untouched.
    const mu = await request(app).get('/formula?type=mu');
    expect(mu.body.rates.cpu).toBe('0.50');

    expect(await db.prisma.pricingRate.count({ where: { tier: { name: 'private' } } })).toBe(2);
    const audit = await db.prisma.auditLog.findFirstOrThrow({ where: { action: 'pricing.rates.set' } });
    expect(audit).toMatchObject({ actor: 'boss', target: 'tier:private', status: 'ok' });
  });

  it.each([
    [
      { type: 'mu', cpu: -1, gpu: 1, mem: 1 },
      /^cpu: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25/,
    ],
    [
      { type: 'mu', cpu: 1, gpu: 'lots', mem: 1 },
      /^gpu: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25$/,
    ],
    [{ type: 'mu', cpu: 1, gpu: 1, mem: 5_000_000 }, /^mem: must be a plain decimal from 0 to 1000000/],
    [
      { type: 'mu', cpu: 1, gpu: 1, mem: 0.1234567 },
      /^mem: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25/,
    ],
    [{ type: 'mu', cpu: 1, gpu: 1 }, /^mem: must be a plain decimal from 0 to 1000000/],
    [{ type: 'nope', cpu: 1, gpu: 1, mem: 1 }, /^type: unknown tier "nope"/],
  ])('refuses %j with a 400 naming the field, changing nothing', async (body, message) => {
    const before = await db.prisma.pricingRate.count();
    const response = await post(admin, body);
    expect(response.status).toBe(400);
    expect(response.body.error).toMatch(message);
    expect(await db.prisma.pricingRate.count()).toBe(before);
  });

  /** POSTs JSON text exactly as given: supertest would write numbers through JSON.stringify. */
  async function postText(agent: Agent, path: string, text: string) {
    return agent
      .post(path)
      .set('Accept', 'application/json')
      .set('Content-Type', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send(text);
  }

  async function ratesOf(tier: string) {
    const latest = await db.prisma.pricingRate.findFirstOrThrow({
      where: { tier: { name: tier } },
      orderBy: { id: 'desc' },
    });
    return {
      id: latest.id,
      cpu: latest.cpuPerHour.toFixed(),
      gpu: latest.gpuPerHour.toFixed(),
      mem: latest.memPerHour.toFixed(),
    };
  }

  it.each([
    ['1e3', 'cpu: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25'],
    ['1E3', 'cpu: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25'],
    ['1e-7', 'cpu: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25'],
    ['1.5E+2', 'cpu: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25'],
    ['0.0000001', 'cpu: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25'],
    [
      '0.10000000000000001',
      'cpu: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25',
    ],
    ['-0.5', 'cpu: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25'],
    ['-0', 'cpu: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25'],
    ['-0.0', 'cpu: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25'],
    ['"+1"', 'cpu: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25'],
    ['".5"', 'cpu: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25'],
    ['"5."', 'cpu: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25'],
  ])('judges the JSON number %s by the text sent: 400, rates and audit log unchanged', async (cpu, message) => {
    const before = await ratesOf('gov');
    const audits = await db.prisma.auditLog.count({ where: { action: 'pricing.rates.set' } });
    for (const path of ['/formula', '/admin/rates']) {
      const response = await postText(admin, path, `{"type":"gov","cpu":${cpu},"gpu":18,"mem":0.08}`);
      expect(response.status, path).toBe(400);
      expect(response.body, path).toEqual({ error: message, code: 400 });
    }
    expect(await ratesOf('gov')).toEqual(before);
    expect(await db.prisma.auditLog.count({ where: { action: 'pricing.rates.set' } })).toBe(audits);
  });

  it('stores a JSON number with the digits sent, and answers with them', async () => {
    const response = await postText(
      admin,
      '/formula',
      ' {\n "type" : "gov", "cpu": 0.1234, "gpu": 18.000001, "mem": 999999.999999 }',
    );
    expect(response.status, response.text).toBe(200);
    expect(response.body.updated).toMatchObject({ type: 'gov', cpu: '0.1234', gpu: '18.000001', mem: '999999.999999' });
    expect(await ratesOf('gov')).toMatchObject({ cpu: '0.1234', gpu: '18.000001', mem: '999999.999999' });
    // Trailing zeros are the same rate: nothing new is saved.
    const same = await postText(
      admin,
      '/formula',
      '{"type":"gov","cpu":0.123400,"gpu":18.0000010,"mem":999999.999999}',
    );
    expect(same.body.updated).toMatchObject({ isChanged: false });
    const back = await postText(admin, '/formula', '{"type":"gov","cpu":0.8,"gpu":18,"mem":0.08}');
    expect(back.status).toBe(200);
  });

  it('refuses malformed JSON and a number where the tier name goes, changing nothing', async () => {
    const before = await ratesOf('gov');
    const malformed = await postText(admin, '/formula', '{"type":"gov","cpu":01,"gpu":18,"mem":0.08}');
    expect(malformed.status).toBe(400);
    expect(malformed.body).toEqual({ error: 'The request body is not valid JSON.', code: 400 });
    const numberedTier = await postText(admin, '/formula', '{"type":5,"cpu":1,"gpu":18,"mem":0.08}');
    expect(numberedTier.body).toEqual({ error: 'type: must be text', code: 400 });
    expect(await ratesOf('gov')).toEqual(before);
  });

  // A form field given twice is refused ("must be given once"); a JSON key given twice took its last
  // value unseen: a script that built its body by hand set mem to 0.50 where it read 0.08.
  it.each([
    ['/formula', '{"type":"gov","cpu":1,"gpu":18,"mem":0.08,"mem":0.50}', 'mem'],
    ['/admin/rates', '{"type":"gov","cpu":"1","gpu":"18","cpu":"2","mem":"0.08"}', 'cpu'],
    ['/admin/rates/tiers/edit', '{"type":"gov","name":"gov2","name":"agency"}', 'name'],
  ])('refuses a JSON key given twice at %s, naming it, changing nothing', async (path, text, field) => {
    const before = await ratesOf('gov');
    const response = await postText(admin, path, text);
    expect(response.status).toBe(400);
    expect(response.body).toEqual({
      error: `The request body gives ${field} more than once; send each field once.`,
      code: 400,
    });
    expect(await ratesOf('gov')).toEqual(before);
    expect(await db.prisma.pricingTier.count({ where: { name: 'gov' } })).toBe(1);
  });

  it.each(['[]', '[{"type":"gov","cpu":1,"gpu":18,"mem":0.08}]', '"gov"', '5', 'null', 'true'])(
    'refuses the JSON value %s, which is not an object of fields, changing nothing',
    async (text) => {
      const before = await ratesOf('gov');
      const response = await postText(admin, '/formula', text);
      expect(response.status).toBe(400);
      expect(response.body).toEqual({ error: 'The request body must be a JSON object.', code: 400 });
      expect(await ratesOf('gov')).toEqual(before);
    },
  );

  it('refuses a field it does not take, naming it, rather than applying the rates now', async () => {
    const before = await request(app).get('/formula?type=private').expect(200);
    const rateCount = await db.prisma.pricingRate.count();
    const response = await post(admin, {
      type: 'private',
      cpu: 9,
      gpu: 99,
      mem: 0.9,
      effective_from: '2030-01-01',
    });
    expect(response.status).toBe(400);
    expect(response.body).toEqual({ error: 'input: has an unknown field: effective_from', code: 400 });
    expect(await db.prisma.pricingRate.count()).toBe(rateCount);
    expect((await request(app).get('/formula?type=private').expect(200)).body).toEqual(before.body);
  });

  it('takes the CSRF token in the JSON body as csurf does', async () => {
    const response = await admin
      .post('/formula')
      .set('Accept', 'application/json')
      .send({ type: 'private', cpu: 1.75, gpu: 36, mem: 0.2, csrf_token: await csrfTokenOf(admin) });
    expect(response.status).toBe(200);
  });

  it('is forbidden to a non-admin and needs the CSRF header', async () => {
    const before = await db.prisma.pricingRate.count();
    const forbidden = await post(alice, { type: 'mu', cpu: 0, gpu: 0, mem: 0 });
    expect(forbidden.status).toBe(403);
    const noToken = await admin.post('/formula').set('Accept', 'application/json').send({
      type: 'mu',
      cpu: 0,
      gpu: 0,
      mem: 0,
    });
    expect(noToken.status).toBe(403);
    expect(await db.prisma.pricingRate.count()).toBe(before);
  });
});

describe('/me', () => {
  beforeEach(clearJobs);

  it('shows the three views of the last 7 days and refuses a bad window with a message', async () => {
    await buildJobs(db, [
      { user: 'alice', end: '2025-09-18T03:00:00Z', name: 'md-run', jobId: '7001' },
      { user: 'alice', end: '2025-09-19T03:00:00Z', name: 'train', jobId: '7002', allocGpus: 1 },
      { user: 'bob', end: '2025-09-19T03:00:00Z', name: 'secret', jobId: '7003' },
    ]);
    const detail = await html(alice, '/me').expect(200);
    expect(detail.text).toContain(
      'rates: CPU 0.50 THB per core-hour, GPU 12.00 THB per GPU-hour, memory 0.05 THB per GB-hour.',
    );
    expect(detail.text).toContain('2025-09-14');
    expect(detail.text).toContain('md-run');
    expect(detail.text).toContain('7002');
    expect(detail.text).not.toContain('secret');

    const aggregate = await html(alice, '/me?view=aggregate&start=2025-09-17&end=2025-09-19').expect(200);
    expect(aggregate.text).toMatch(/<svg class="chart"[^>]*role="img"/);
    expect(aggregate.text).not.toMatch(/style="/);

    await html(alice, '/me?view=billed').expect(200);

    const backwards = await html(alice, '/me?start=2025-09-19&end=2025-09-01').expect(400);
    expect(backwards.text).toContain('Ended from (2025-09-19) is after Ended to (2025-09-01).');
    const nonsense = await html(alice, '/me?start=2025-02-30').expect(400);
    expect(nonsense.text).toContain('Ended from: is not a real calendar date');
    const badSort = await html(alice, '/me?sort=password').expect(400);
    expect(badSort.text).toContain('Sort: must be one of');
  });

  it("shows each job's hours as they are priced, so that hours × rates gives the cost shown", async () => {
    // 2,795 s of one GPU are 0.776389 GPU-hours: 9.32 THB with the rest at 12 THB an hour. Shown
    // to two decimals, 0.78 × 12 = 9.36 did not give the 9.32 beside it.
    await buildJobs(db, [
      {
        user: 'alice',
        end: '2025-09-18T03:00:00Z',
        jobId: '7101',
        elapsedSec: 2795,
        allocGpus: 1,
        totalCpuSec: '8.737',
        stepMemGbHours: '0.008292',
      },
    ]);
    const page = (await html(alice, '/me').expect(200)).text;
    const row = /<td data-label="Job">7101<\/td>.*?<\/tr>/s.exec(page)?.[0] ?? '';
    const cell = (label: string) => new RegExp(`data-label="${label}" class="num">([^<]*)<`).exec(row)?.[1] ?? '';
    const shown = [cell('CPU h'), cell('GPU h'), cell('Mem GB·h'), cell('Cost \\(THB\\)')];
    expect(shown).toEqual(['0.002427', '0.776389', '0.008292', '9.32']);
    const [cpu, gpu, mem] = shown.map((figure) => new Prisma.Decimal(figure));
    const cost = (cpu as Prisma.Decimal)
      .times('0.5')
      .plus((gpu as Prisma.Decimal).times('12'))
      .plus((mem as Prisma.Decimal).times('0.05'));
    expect(cost.toDecimalPlaces(2, Prisma.Decimal.ROUND_HALF_UP).toFixed(2)).toBe(cell('Cost \\(THB\\)'));
  });

  it('points a window too long for a page to a CSV download of that same window', async () => {
    await buildJobs(db, [{ user: 'alice', end: '2024-03-01T03:00:00Z', jobId: '7101' }]);
    // Counts read as the pages print them: 2,528 days, not 2528.
    expect((await html(alice, '/me?start=2020-01-01&end=2026-12-02').expect(400)).text).toContain(
      'The window is 2,528 days long; pick at most 366 days',
    );
    const page = await html(alice, '/me?start=2024-01-01&end=2025-09-20').expect(400);
    expect(page.text).toContain('The window is 629 days long; pick at most 366 days (the CSV export has no limit).');
    expect(page.text).toContain('href="/me.csv?start=2024-01-01&amp;end=2025-09-20">Download CSV</a>');
    // The tabs keep the window as the form does.
    expect(page.text).toContain('href="/me?start=2024-01-01&amp;end=2025-09-20&amp;view=aggregate"');
    const csv = await alice.get('/me.csv?start=2024-01-01&end=2025-09-20').expect(200);
    expect(csv.text).toContain('7101,test,');

    const admin400 = await html(admin, '/admin/usage?start=2024-01-01&end=2025-09-20&user=alice&account=').expect(400);
    expect(admin400.text).toContain('pick at most 366 days');
    expect(admin400.text).toContain(
      'href="/admin/usage.csv?user=alice&amp;start=2024-01-01&amp;end=2025-09-20">Download these jobs (CSV)</a>',
    );
    expect(admin400.text).toContain('href="/admin/my.csv?start=2024-01-01&amp;end=2025-09-20">My own usage (CSV)</a>');
  });

  it("names the admin's usage CSV by what it downloads: all jobs, or only the filtered ones", async () => {
    const all = await html(admin, '/admin/usage?start=2025-09-01&end=2025-09-20').expect(200);
    expect(all.text).toContain(
      'href="/admin/usage.csv?start=2025-09-01&amp;end=2025-09-20">Download all jobs (CSV)</a>',
    );
    for (const filter of ['user=alice', 'account=physics', 'partition=gpu']) {
      const filtered = await html(admin, `/admin/usage?start=2025-09-01&end=2025-09-20&${filter}`).expect(200);
      expect(filtered.text).toContain(
        `href="/admin/usage.csv?start=2025-09-01&amp;end=2025-09-20&amp;${filter}">Download these jobs (CSV)</a>`,
      );
      expect(filtered.text).not.toContain('Download all jobs');
    }
  });

  it('never links a refused window to a CSV of another window: the typed one when the CSV takes it, else none', async () => {
    // A window the CSV would refuse too: no link (a bare /me.csv would download the last 7 days).
    for (const query of ['start=2026-11-30&end=2026-11-01', 'start=2025-02-30', 'start=2025-09-01&start=2025-09-02']) {
      const page = await html(alice, `/me?${query}`).expect(400);
      expect(page.text, query).not.toContain('href="/me.csv');
      expect(page.text, query).toContain(
        '<span class="tab disabled"><span class="visually-hidden">Not available: </span>Download CSV (needs a valid window)</span>',
      );
      // The form keeps what was typed, and the CSV of that window answers the same refusal.
      await alice.get(`/me.csv?${query}`).expect(400);
    }
    const reversed = await html(alice, '/me?start=2026-11-30&end=2026-11-01').expect(400);
    expect(reversed.text).toContain('Ended from (2026-11-30) is after Ended to (2026-11-01).');
    expect(reversed.text).toContain('id="start" name="start" type="date" value="2026-11-30"');
    expect((await alice.get('/me.csv?start=2026-11-30&end=2026-11-01').expect(400)).body).toEqual({
      error: 'start (2026-11-30) is after end (2026-11-01).',
      code: 400,
    });

    // A refusal of something else keeps the window typed, as the page would have shown it.
    const badSort = await html(alice, '/me?start=2025-09-01&end=2025-09-03&sort=password').expect(400);
    expect(badSort.text).toContain('href="/me.csv?start=2025-09-01&amp;end=2025-09-03">Download CSV</a>');
    // From alone runs up to today (2025-09-20), on the page and in its CSV alike.
    const startOnly = await html(alice, '/me?start=2025-09-01&sort=password').expect(400);
    expect(startOnly.text).toContain('href="/me.csv?start=2025-09-01&amp;end=2025-09-20">Download CSV</a>');

    // The admin usage page: neither export of a reversed window is offered.
    const adminReversed = await html(admin, '/admin/usage?start=2026-11-30&end=2026-11-01&user=alice').expect(400);
    expect(adminReversed.text).toContain('Ended from (2026-11-30) is after Ended to (2026-11-01).');
    expect(adminReversed.text).not.toContain('href="/admin/usage.csv');
    expect(adminReversed.text).not.toContain('href="/admin/my.csv');
    expect(adminReversed.text).toContain('Download these jobs (CSV): needs a valid window and filters');
    expect(adminReversed.text).toContain('My own usage (CSV): needs a valid window');
    await admin.get('/admin/usage.csv?start=2026-11-30&end=2026-11-01&user=alice').expect(400);
    // A filter the export refuses leaves the admin's own export, which takes no filters.
    const longUser = await html(admin, `/admin/usage?start=2025-09-01&end=2025-09-03&user=${'x'.repeat(65)}`).expect(
      400,
    );
    expect(longUser.text).not.toContain('href="/admin/usage.csv');
    expect(longUser.text).toContain('href="/admin/my.csv?start=2025-09-01&amp;end=2025-09-03">My own usage');

    // Each refusal marks the filter to fix, described by the reason and focused, keeping what was typed.
    // A reversed window marks both dates (either may be the one to fix), the focus on the first.
    const expectTied = (page: string, fields: string | string[], message: string) => {
      const marked = typeof fields === 'string' ? [fields] : fields;
      const state = refusedFormStateOf(page);
      expect(state.invalid).toEqual(marked);
      for (const field of marked) {
        expect(elementById(page, state.describedBy[field] ?? '')).toMatch(
          /^<div class="alert error" role="alert"[^>]*>/,
        );
        expect(elementById(page, state.describedBy[field] ?? '')).toContain(message);
      }
      expect(state.autofocus).toEqual([marked[0]]);
    };
    expectTied(adminReversed.text, ['start', 'end'], 'Ended from (2026-11-30) is after Ended to (2026-11-01).');
    expect(adminReversed.text).toMatch(/id="start" name="start" type="date" value="2026-11-30"/);
    expectTied(longUser.text, 'user', 'User: must be at most 64 characters');
    const tooLong = await html(admin, '/admin/usage?start=2024-01-01&end=2025-09-20').expect(400);
    expectTied(tooLong.text, 'end', 'pick at most 366 days');
    const badDate = await html(admin, '/admin/usage?start=2025-09-01&end=2025-09-31').expect(400);
    expectTied(badDate.text, 'end', 'Ended to: ');
  });

  it('says what the admin usage filters looked for when they match nothing', async () => {
    await buildJobs(db, [{ user: 'alice', end: '2025-09-02T03:00:00Z' }]);
    // The User filter matches part of a name in any case (admin-usage-user-filter.test.ts).
    const partial = await html(admin, '/admin/usage?start=2025-09-01&end=2025-09-03&user=ALI').expect(200);
    expect(partial.text).not.toContain('No jobs match');
    const none = await html(admin, '/admin/usage?start=2025-09-01&end=2025-09-03&user=zed').expect(200);
    expect(none.text).toContain('No jobs match. No job is for a username containing “zed” (in any case).');
    const account = await html(admin, '/admin/usage?start=2025-09-01&end=2025-09-03&account=phys').expect(200);
    expect(account.text).toContain('No jobs match. The Account and Partition filters match whole names.');
    const whole = await html(admin, '/admin/usage?start=2025-09-01&end=2025-09-03&user=alice').expect(200);
    expect(whole.text).not.toContain('No jobs match');
  });

  it('sends the window as a CSV attachment with a header row, counted as my_usage', async () => {
    await buildJobs(db, [
      { user: 'alice', end: '2025-09-18T03:00:00Z', name: 'md, "quoted"', jobId: '8001', totalCpuSec: '3600' },
      { user: 'bob', end: '2025-09-18T03:00:00Z', jobId: '8002' },
    ]);
    const before = await metricValue(metrics, 'csv_download_total', { kind: 'my_usage' });
    const response = await alice.get('/me.csv?start=2025-09-14&end=2025-09-20').expect(200);
    expect(response.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(response.headers['content-disposition']).toBe(
      'attachment; filename="usage-alice-2025-09-14-2025-09-20.csv"',
    );
    const lines = response.text.trim().split('\n');
    expect(lines[0]).toBe(
      'job_id,cluster,name,user,account,partition,state,start,end,elapsed_sec,cpu_hours,gpu_hours,mem_gb_hours,tier,cost,receipt_id,receipt_status,currency,tier_basis',
    );
    expect(lines).toHaveLength(2);
    // The page heads its cost column "Cost (THB)"; each CSV line says the same. An unbilled job's
    // tier is alice's current one.
    expect(lines[1]).toMatch(/,mu,\d+\.\d{2},,,THB,current$/);
    expect(lines[1]).toContain('8001,test,"md, ""quoted""",alice');
    expect(lines[1]).toContain(',1.000000,0.000000,');
    expect(await metricValue(metrics, 'csv_download_total', { kind: 'my_usage' })).toBe(before + 1);
    await alice.get('/me.csv?start=nope').expect(400);
  });
});

describe('/me paging', () => {
  beforeEach(clearJobs);

  it('answers a page past the last with a 404 that says how many there are and links to page 1', async () => {
    await buildJobs(
      db,
      Array.from({ length: 60 }, (_, index) => ({ user: 'alice', end: new Date(Date.UTC(2025, 8, 15, 0, index)) })),
    );
    const window = 'start=2025-09-14&end=2025-09-20';
    const last = await html(alice, `/me?${window}&page=2`).expect(200);
    expect(last.text).toContain('60 jobs ended in this window.');
    expect(last.text).toContain('Page 2 of 2');
    // The window's total is on Per day, for the same window.
    const perDay = /Their total cost is on <a href="([^"]+)">Per day<\/a>/
      .exec(last.text)?.[1]
      ?.replaceAll('&amp;', '&');
    expect(perDay).toBe(`/me?${window}&view=aggregate`);
    expect((await html(alice, perDay as string).expect(200)).text).toMatch(
      /<tfoot><tr class="labelled"><th scope="row">Total<\/th><td data-label="Jobs" class="num">60<\/td>/,
    );

    for (const page of [3, 99]) {
      const past = await html(alice, `/me?${window}&sort=name&dir=asc&page=${page}`).expect(404);
      expect(past.text).toContain(
        `60 jobs ended in this window (2025-09-14 to 2025-09-20), on 2 pages; there is no page ${page}.`,
      );
      expect(past.text).toContain(
        '<a href="/me?start=2025-09-14&amp;end=2025-09-20&amp;view=detail&amp;sort=name&amp;dir=asc">Go to page 1</a>',
      );
      expect(past.text).not.toContain('ended in this window.');
      expect(past.text).not.toContain(`Page ${page} of`);
      expect(past.text).not.toContain('rel="prev"');
    }

    // The billed view pages the same way: nothing of this window is on a receipt yet.
    const billed = await html(alice, `/me?${window}&view=billed&page=2`).expect(404);
    expect(billed.text).toContain(
      'No job of this window (2025-09-14 to 2025-09-20) is on a receipt yet; there is no page 2.',
    );
    expect(billed.text).toContain('href="/me?start=2025-09-14&amp;end=2025-09-20&amp;view=billed">Go to page 1</a>');
    await html(alice, `/me?${window}&view=billed`).expect(200);
  });

  it('keeps page 1 of an empty window a plain page saying there is nothing, and its page 2 a 404', async () => {
    const empty = await html(alice, '/me?start=2025-01-01&end=2025-01-07').expect(200);
    // Said once, not as "0 jobs ended" above "No jobs ended".
    expect(empty.text).not.toContain('0 jobs ended in this window.');
    expect(empty.text.match(/No jobs ended in this window\./g)).toHaveLength(1);
    expect(empty.text).not.toContain('Go to page 1');
    const past = await html(alice, '/me?start=2025-01-01&end=2025-01-07&page=2').expect(404);
    expect(past.text).toContain('No jobs ended in this window (2025-01-01 to 2025-01-07); there is no page 2.');
    // A page that is not a whole number from 1 stays a 400.
    await html(alice, '/me?page=0').expect(400);
  });

  it('names a bad page number "Page" on every list page, as the usage page does, and "page" to JSON clients', async () => {
    const pages: Array<[Agent, string]> = [
      [alice, '/me?page=0'],
      [alice, '/me/receipts?page=0'],
      [alice, '/me/receipts/999999?page=0'],
      [admin, '/admin/receipts/999999?page=0'],
      [admin, '/admin/month-end?page=0'],
    ];
    for (const [agent, path] of pages) {
      expect((await html(agent, path).expect(400)).text, path).toContain('Page: must be at least 1');
      expect((await json(agent, path).expect(400)).body, path).toEqual({
        error: 'page: must be at least 1',
        code: 400,
      });
    }
  });
});

describe('CSV exports opened in a spreadsheet', () => {
  beforeEach(clearJobs);

  it('neutralise text that would start a formula in every CSV, the same in both usage export paths', async () => {
    await buildJobs(db, [
      {
        user: 'alice',
        end: '2025-09-10T03:00:00Z',
        jobId: '8101',
        cluster: '-east',
        name: '=HYPERLINK("http://x")',
        account: '+acct',
        partition: '@part',
      },
      { user: 'alice', end: '2025-09-18T03:00:00Z', jobId: '8102', name: '-rf' },
      { user: 'alice', end: '2025-09-18T04:00:00Z', jobId: '8103', name: '@SUM(1)' },
      { user: 'bob', end: '2025-09-18T03:00:00Z', jobId: '8104', name: '=1+1' },
      { user: 'boss', end: '2025-09-18T03:00:00Z', jobId: '8105', name: '+cmd' },
    ]);
    const id = await billJobsBefore(alice, '2025-09-15');
    await admin
      .post(`/admin/receipts/${id}/paid`)
      .type('form')
      .send({
        method: 'bank_transfer',
        amount_received: await amountDueOf(db, id),
        tx_ref: '=HYPERLINK("http://pay")',
        csrf_token: await csrfTokenOf(admin, '/admin/receipts'),
      })
      .expect(303);
    const window = 'start=2025-09-08&end=2025-09-20';
    const body = async (agent: Agent, path: string) =>
      (await agent.get(path).expect(200)).text.trimEnd().split('\n').slice(1);

    // One user's export (through the session's function) and the export across users (a plain COPY).
    const mine = await body(alice, `/me.csv?${window}`);
    expect(mine).toHaveLength(3);
    expect(mine[0]).toMatch(/^8101,'-east,"'=HYPERLINK\(""http:\/\/x""\)",alice,'\+acct,'@part,COMPLETED,/);
    expect(mine[1]).toMatch(/^8102,test,'-rf,alice,physics,compute,/);
    expect(mine[2]).toMatch(/^8103,test,'@SUM\(1\),alice,/);
    const everyone = await body(admin, `/admin/usage.csv?${window}`);
    expect(everyone.filter((line) => line.split(',')[3] === 'alice')).toEqual(mine);
    expect(everyone).toContainEqual(expect.stringMatching(/^8104,test,'=1\+1,bob,/));
    expect(await body(admin, `/admin/my.csv?${window}`)).toEqual([expect.stringMatching(/^8105,test,'\+cmd,boss,/)]);
    expect(await body(admin, `/admin/usage.csv?${window}&user=alice`)).toEqual(mine);

    const items = await body(alice, `/me/receipts/${id}/items.csv`);
    expect(items).toEqual([
      expect.stringMatching(
        new RegExp(`^${id},8101,'-east,[\\d.]+,[\\d.]+,[\\d.]+,\\d+\\.\\d{2},THB,"'=HYPERLINK\\(""http://x""\\)",`),
      ),
    ]);
    expect(await body(admin, `/admin/receipts/${id}/items.csv`)).toEqual(items);
    const paid = await body(admin, '/admin/paid.csv?start=2025-09-01&end=2025-09-30');
    expect(paid).toEqual([expect.stringContaining(`${id},alice,`)]);
    expect(paid[0]).toContain(',bank_transfer,"\'=HYPERLINK(""http://pay"")",');
  });

  it("write a billed job's cost to the minor unit like an unbilled one, in the CSVs and on the page", async () => {
    await buildJobs(db, [
      { user: 'alice', end: '2025-09-10T03:00:00Z', jobId: '8201', allocCpus: 3 },
      { user: 'alice', end: '2025-09-18T03:00:00Z', jobId: '8202', allocCpus: 3 },
    ]);
    const id = await billJobsBefore(alice, '2025-09-15');
    const item = await db.prisma.receiptItem.findFirstOrThrow({ where: { receiptId: id } });
    const cost = item.cost.toFixed(2);
    const window = 'start=2025-09-08&end=2025-09-20';
    const costs = (text: string) =>
      text
        .trimEnd()
        .split('\n')
        .slice(1)
        .map((line) => line.split(',')[14]);
    // Both jobs cost the same (3 CPUs for an hour at the same rate), one billed and one not.
    const expected = [cost, cost];
    expect(costs((await alice.get(`/me.csv?${window}`).expect(200)).text)).toEqual(expected);
    expect(costs((await admin.get(`/admin/usage.csv?${window}`).expect(200)).text)).toEqual(expected);
    const items = (await alice.get(`/me/receipts/${id}/items.csv`).expect(200)).text.trimEnd().split('\n');
    expect(items[1]?.split(',')[6]).toBe(cost);
    const page = await html(alice, `/me?${window}`).expect(200);
    expect([...page.text.matchAll(/data-label="Cost \(THB\)" class="num">([^<]*)</g)].map((match) => match[1])).toEqual(
      expected,
    );
  });
});

describe('receipts over HTTP', () => {
  beforeEach(clearJobs);

  it('creates a receipt, redirects to it, and hides it from everyone else', async () => {
    await buildJobs(db, [{ user: 'alice', end: '2025-09-10T03:00:00Z', jobId: '9001' }]);
    const created = await createReceipt(alice, '2025-09-15');
    expect(created.status).toBe(303);
    const location = receiptPathOf(created);
    const page = await html(alice, location).expect(200);
    expect(page.text).toContain('9001');
    expect(page.text).toContain('pending');
    expect(page.text).toContain('Total (1 job)');
    expect(page.text).not.toContain('page 1 of');
    expect((await html(alice, '/me/receipts').expect(200)).text).toContain(location);
    await html(bob, location).expect(404);
    await html(alice, '/me/receipts/abc').expect(400);

    const again = await createReceipt(alice, '2025-09-15');
    expect(again.status).toBe(422);
    expect(again.text).toContain('Nothing to bill: no finished, unbilled jobs ended on or before 2025-09-15.');
    // Sent again from a second tab or after Back: the reason says where the jobs went, with a way there.
    const receiptId = location.slice(location.lastIndexOf('/') + 1).replace(/#.*/, '');
    expect(again.text).toContain(`Receipt #${receiptId} already bills your jobs up to that day.`);
    expect(again.text).toMatch(new RegExp(`<a href="/me/receipts/${receiptId}">Open receipt #${receiptId}</a>`));
    // A day before any of alice's jobs ended: that receipt bills none of them, so it is not named.
    const beforeAnyJob = await createReceipt(alice, '2025-09-09');
    expect(beforeAnyJob.status).toBe(422);
    expect(beforeAnyJob.text).toContain('Nothing to bill: no finished, unbilled jobs ended on or before 2025-09-09.');
    expect(beforeAnyJob.text).not.toContain('already bills your jobs');
    expect(beforeAnyJob.text).not.toContain('Open receipt #');
    expect(await db.prisma.receipt.count()).toBe(1);
  });

  it('shows a refused receipt on /me beside its form, with the date as typed, and writes nothing', async () => {
    const onMyUsagePage = (page: { text: string }, message: string, typed: string) => {
      expect(page.text).toContain('<h1>My usage</h1>');
      const form = page.text.slice(page.text.indexOf('<h2>Create a receipt</h2>'));
      expect(form).toContain(`<div class="alert error" role="alert" id="receipt-error">No receipt created. ${message}`);
      expect(form).toContain('action="/me/receipt#create-receipt"');
      expect(form).toMatch(new RegExp(`id="before"[^>]* value="${typed}"`));
    };

    const nothing = await createReceipt(alice, '2025-09-15');
    expect(nothing.status).toBe(422);
    onMyUsagePage(nothing, 'Nothing to bill: no finished, unbilled jobs ended on or before 2025-09-15.', '2025-09-15');

    await buildJobs(db, [{ user: 'alice', end: '2025-09-10T03:00:00Z', jobId: '9301' }]);
    const future = await createReceipt(alice, '2025-09-21');
    expect(future.status).toBe(400);
    onMyUsagePage(
      future,
      'Jobs ended up to and including: 2025-09-21 is in the future; the latest day you can bill is 2025-09-20.',
      '2025-09-21',
    );
    const notADate = await createReceipt(alice, '15/09/2025');
    expect(notADate.status).toBe(400);
    onMyUsagePage(
      notADate,
      'Jobs ended up to and including: must be a date as YYYY-MM-DD (got &#34;15/09/2025&#34;)',
      '15/09/2025',
    );

    // Another receipt takes the job while this one waits on it: a 409, shown the same way.
    const racer = await db.pool.connect();
    try {
      await racer.query('BEGIN');
      const { rows } = await racer.query(
        `INSERT INTO receipts (username, billed_through, total, currency, tier_name, rates_snapshot, rates_locked_at, created_by)
         VALUES ('alice', '2025-09-15', 0, 'THB', 'mu', '{}', now(), 'racer') RETURNING id`,
      );
      await racer.query(
        `INSERT INTO receipt_items (receipt_id, slurm_job_id, cluster, job_key, display_job_id, cpu_hours, gpu_hours, mem_gb_hours, cost, job_end_at)
         SELECT $1, id, cluster, job_key, job_id, 0, 0, 0, 0, end_at FROM slurm_jobs WHERE job_id = '9301'`,
        [rows[0].id],
      );
      const token = await csrfTokenOf(alice, '/me');
      const raced = alice
        .post('/me/receipt')
        .set('Accept', 'text/html')
        .type('form')
        .send({ before: '2025-09-15', csrf_token: token })
        .then((response) => response);
      expect(await sessionsWaitingForLocks(db.pool)).toBeGreaterThan(0);
      await racer.query('COMMIT');
      const lost = await raced;
      expect(lost.status).toBe(409);
      onMyUsagePage(lost, 'Some of these jobs were put on another receipt at the same moment', '2025-09-15');
      // A way on: the list where the receipt that won is. The other refusals have none (nothing to see there).
      const alert =
        /<div class="alert error" role="alert"[^>]*>No receipt created\. Some of these jobs[^<]*(?:<(?!\/div>)[^<]*)*<\/div>/.exec(
          lost.text,
        )?.[0];
      expect(alert).toContain('<a href="/me/receipts">Open My receipts</a>');
      expect(nothing.text).not.toContain('>Open My receipts</a>');
    } finally {
      racer.release();
    }
    expect(await db.prisma.receipt.findMany({ select: { createdBy: true } })).toEqual([{ createdBy: 'racer' }]);

    // JSON clients keep {error, code} and the status.
    const api = await alice
      .post('/me/receipt')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(alice, '/me'))
      .send({ before: '2025-09-21' });
    expect(api.status).toBe(400);
    expect(api.body).toEqual({
      error: 'before: 2025-09-21 is in the future; the latest day you can bill is 2025-09-20.',
      code: 400,
    });
    expect(await db.prisma.receipt.count()).toBe(1);
  });

  it('pages a large receipt 500 jobs at a time and exports every item as CSV, to its owner and admins only', async () => {
    // 5,001 jobs: eleven pages, the last with one job, and two batches of the CSV's 5,000.
    await buildJobs(
      db,
      Array.from({ length: 5001 }, (_, index) => ({
        user: 'alice',
        end: new Date(Date.UTC(2025, 8, 1, 0, 0, index)),
        jobId: String(700_000 + index),
        allocCpus: 1 + (index % 7),
        elapsedSec: 600 + index,
        allocGpus: index % 5 === 0 ? 1 : 0,
      })),
    );
    const location = receiptPathOf(await createReceipt(alice, '2025-09-15'));
    const id = Number(location.split('/').pop());
    const receipt = await db.prisma.receipt.findUniqueOrThrow({ where: { id } });
    const items = await db.prisma.receiptItem.findMany({ where: { receiptId: id }, orderBy: { id: 'asc' } });
    expect(items).toHaveLength(5001);
    const jobsOn = (text: string) => [...text.matchAll(/<td data-label="Job">([^<]*)<\/td>/g)].map((match) => match[1]);

    const first = await html(alice, location).expect(200);
    expect(jobsOn(first.text)).toEqual(items.slice(0, 500).map((item) => item.displayJobId));
    expect(first.text).toContain('Jobs 1–500 of 5,001 (page 1 of 11)');
    expect(first.text).toContain(`href="${location}?page=2" rel="next"`);
    expect(first.text).toContain('Total (5,001 jobs)');
    expect(first.text).toContain(`href="${location}/items.csv"`);
    const middle = await html(alice, `${location}?page=2`).expect(200);
    expect(jobsOn(middle.text)).toEqual(items.slice(500, 1000).map((item) => item.displayJobId));
    const last = await html(alice, `${location}?page=11`).expect(200);
    expect(jobsOn(last.text)).toEqual([items[5000]?.displayJobId]);
    // A last page of one job names it once: "Jobs 5,001–5,001" named it twice.
    expect(last.text).toContain('Job 5,001 of 5,001 (page 11 of 11)');
    expect(last.text).toContain(`href="${location}?page=10" rel="prev"`);
    expect(last.text).not.toContain('rel="next"');

    expect((await json(alice, `${location}?page=12`).expect(404)).body).toEqual({
      error: `Receipt #${id} lists 5,001 jobs on 11 pages; there is no page 12.`,
      code: 404,
    });
    expect((await json(alice, `${location}?page=0`).expect(400)).body.error).toMatch(/^page: /);
    expect((await json(alice, `${location}?page=two`).expect(400)).body.error).toMatch(/^page: /);
    await html(bob, `${location}?page=2`).expect(404);

    const downloadsBefore = await metricValue(metrics, 'csv_download_total', { kind: 'receipt_items' });
    const csv = await alice.get(`${location}/items.csv`).expect(200);
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(csv.headers['content-disposition']).toBe(`attachment; filename="receipt-${id}-items.csv"`);
    const lines = csv.text.split('\n');
    expect(lines.at(-1)).toBe('');
    expect(lines[0]).toBe('receipt_id,job_id,cluster,cpu_hours,gpu_hours,mem_gb_hours,cost,currency,name,end');
    const jobs = await db.prisma.slurmJob.findMany({ where: { user: 'alice' }, select: { id: true, endAt: true } });
    const endOf = new Map(jobs.map((job) => [job.id, `${job.endAt?.toISOString().slice(0, 19)}Z`]));
    expect(lines.slice(1, -1)).toEqual(
      items.map((item) =>
        [
          id,
          item.displayJobId,
          item.cluster,
          item.cpuHours.toFixed(6),
          item.gpuHours.toFixed(6),
          item.memGbHours.toFixed(6),
          item.cost.toFixed(2),
          'THB',
          'job',
          endOf.get(item.slurmJobId),
        ].join(','),
      ),
    );
    const csvTotal = lines
      .slice(1, -1)
      .reduce((sum, line) => sum.add(line.split(',')[6] as string), new Prisma.Decimal(0));
    expect(csvTotal.toFixed(2)).toBe(receipt.total.toFixed(2));
    expect(await metricValue(metrics, 'csv_download_total', { kind: 'receipt_items' })).toBe(downloadsBefore + 1);
    expect((await json(bob, `${location}/items.csv`).expect(404)).body.error).toBe(`Receipt #${id} was not found.`);
    await json(alice, '/me/receipts/0/items.csv').expect(400);

    const adminPage = await html(admin, `/admin/receipts/${id}?page=3`).expect(200);
    expect(jobsOn(adminPage.text)).toEqual(items.slice(1000, 1500).map((item) => item.displayJobId));
    expect(adminPage.text).toContain(`href="/admin/receipts/${id}?page=4" rel="next"`);
    expect((await admin.get(`/admin/receipts/${id}/items.csv`).expect(200)).text).toBe(csv.text);
    await alice.get(`/admin/receipts/${id}/items.csv`).set('Accept', 'application/json').expect(403);
    await json(admin, '/admin/receipts/999999/items.csv').expect(404);
  });

  it('answers a page of the receipt lists past the last with a 404 that says how many there are', async () => {
    const empty = await html(alice, '/me/receipts').expect(200);
    expect(empty.text).toContain('No receipts yet.');
    expect((await json(alice, '/me/receipts?page=2').expect(404)).body.error).toBe(
      'You have 0 receipts on 1 page; there is no page 2.',
    );
    await buildJobs(db, [{ user: 'alice', end: '2025-09-10T03:00:00Z' }]);
    const created = await createReceipt(alice, '2025-09-15');
    const listed = await html(alice, '/me/receipts').expect(200);
    expect(listed.text).toContain(`href="${receiptPathOf(created)}"`);
    const past = await html(alice, '/me/receipts?page=99').expect(404);
    expect(past.text).toContain('You have 1 receipt on 1 page; there is no page 99.');
    expect(past.text).not.toContain('No receipts yet.');
    await html(admin, '/admin/receipts?user=alice').expect(200);
    expect((await json(admin, '/admin/receipts?user=alice&page=2').expect(404)).body.error).toBe(
      'The filters match 1 receipt on 1 page; there is no page 2.',
    );
  });

  it('needs a CSRF token and a real date', async () => {
    await buildJobs(db, [{ user: 'alice', end: '2025-09-10T03:00:00Z' }]);
    await alice.post('/me/receipt').type('form').send({ before: '2025-09-15' }).expect(403);
    const bad = await createReceipt(alice, '15/09/2025');
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('Jobs ended up to and including: must be a date as YYYY-MM-DD');
    expect(await db.prisma.receipt.count()).toBe(0);
  });

  it('with 20 concurrent requests bills each job exactly once', async () => {
    await buildJobs(
      db,
      Array.from({ length: 200 }, (_, index) => ({ user: 'alice', end: new Date(Date.UTC(2025, 8, 5, 0, index)) })),
    );
    const token = await csrfTokenOf(alice, '/me');
    const responses = await Promise.all(
      Array.from({ length: 20 }, () =>
        alice
          .post('/me/receipt')
          .set('Accept', 'application/json')
          .set('X-CSRFToken', token)
          .send({ before: '2025-09-15' }),
      ),
    );
    const statuses = responses.map((response) => response.status);
    expect(statuses.filter((status) => status === 201).length).toBeGreaterThanOrEqual(1);
    expect(statuses.every((status) => [201, 409, 422].includes(status))).toBe(true);
    const perJob = await db.prisma.receiptItem.groupBy({ by: ['displayJobId'], _count: { _all: true } });
    expect(perJob).toHaveLength(200);
    expect(perJob.every((row) => row._count._all === 1)).toBe(true);
  });

  it('lets an admin mark a receipt paid once, void it with a reason, and export paid receipts', async () => {
    await buildJobs(db, [{ user: 'alice', end: '2025-09-10T03:00:00Z', jobId: '9101' }]);
    const created = await createReceipt(alice, '2025-09-15');
    const id = Number(receiptPathOf(created).split('/').pop());
    const token = await csrfTokenOf(admin, '/admin/receipts');
    const paidBefore = await metricValue(metrics, 'billing_receipt_marked_paid_total', { actor_type: 'admin' });

    await alice
      .post(`/admin/receipts/${id}/paid`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(alice, '/me'))
      .send({ method: 'cash' })
      .expect(403);
    const paid = await admin
      .post(`/admin/receipts/${id}/paid`)
      .type('form')
      .send({
        method: 'bank_transfer',
        amount_received: await amountDueOf(db, id),
        tx_ref: 'KBANK-42',
        csrf_token: token,
      });
    expect(paid.status).toBe(303);
    expect(await metricValue(metrics, 'billing_receipt_marked_paid_total', { actor_type: 'admin' })).toBe(
      paidBefore + 1,
    );
    const twice = await admin
      .post(`/admin/receipts/${id}/paid`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ method: 'cash', amount_received: await amountDueOf(db, id) });
    expect(twice.status).toBe(409);
    expect(twice.body.error).toMatch(/is paid; only a pending receipt can be marked paid/);

    const paidCsv = await admin.get('/admin/paid.csv?start=2025-09-01&end=2025-09-30').expect(200);
    expect(paidCsv.text).toContain(`${id},alice,`);
    expect(paidCsv.text).toContain('bank_transfer,KBANK-42');

    const noReason = await admin
      .post(`/admin/receipts/${id}/void`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ reason: ' ' });
    expect(noReason.status).toBe(400);
    expect(noReason.body.error).toMatch(/^reason: must say why the receipt is void, in at least 3 characters$/);
    // Number() reads 5e0 and 0x5 as 5; the receipt they name by accident stays as it is.
    for (const written of [`${id}e0`, `0x${id.toString(16)}`]) {
      const misread = await admin
        .post(`/admin/receipts/${written}/void`)
        .set('Accept', 'application/json')
        .set('X-CSRFToken', token)
        .send({ reason: 'typed by mistake' });
      expect(misread.status, written).toBe(400);
      expect(misread.body.error).toBe('receipt id: must be a whole number');
    }
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id } })).status).toBe('paid');
    await admin
      .post(`/admin/receipts/${id}/void`)
      .type('form')
      .send({ reason: 'wrong project', csrf_token: token })
      .expect(303);
    const page = await html(admin, `/admin/receipts/${id}`).expect(200);
    expect(page.text).toContain('wrong project');
    expect(page.text).toContain('KBANK-42');
    expect((await html(alice, `/me/receipts/${id}`).expect(200)).text).toContain('void');
    const actions = await db.prisma.auditLog.findMany({
      where: { target: `receipt:${id}` },
      orderBy: { id: 'asc' },
      select: { action: true, actor: true },
    });
    expect(actions).toEqual([
      { action: 'receipt.create', actor: 'alice' },
      { action: 'receipt.mark_paid', actor: 'boss' },
      { action: 'receipt.void', actor: 'boss' },
    ]);
    // The job is billable again.
    expect((await createReceipt(alice, '2025-09-15')).status).toBe(303);
  });

  it('answers a form posted with Accept: application/json in JSON, as its refusals are, and a browser with 303', async () => {
    await buildJobs(db, [
      { user: 'alice', end: '2025-09-10T03:00:00Z' },
      { user: 'alice', end: '2025-09-11T03:00:00Z' },
    ]);
    const first = await billJobsBefore(alice, '2025-09-10');
    const token = await csrfTokenOf(admin, '/admin/receipts');
    const formAskingJson = (path: string, body: Record<string, string>) =>
      admin
        .post(path)
        .set('Accept', 'application/json')
        .type('form')
        .send({ ...body, csrf_token: token });

    const paid = await formAskingJson(`/admin/receipts/${first}/paid`, {
      method: 'cash',
      amount_received: await amountDueOf(db, first),
      paid_on: '2025-09-20',
    });
    expect(paid.status).toBe(200);
    expect(paid.headers['content-type']).toMatch(/^application\/json/);
    expect(paid.body).toMatchObject({ ok: true, receipt: { id: first, status: 'paid', paidOn: '2025-09-20' } });
    const voided = await formAskingJson(`/admin/receipts/${first}/void`, { reason: 'wrong project' });
    expect(voided.status).toBe(200);
    expect(voided.body).toMatchObject({ ok: true, receipt: { id: first, status: 'void', releasedJobs: 1 } });
    // The run answers at once, 202 with where to follow it; its status page has the outcome.
    const run = await formAskingJson('/admin/month-end', { before: '2025-09-15' });
    expect(run.status, run.text.slice(0, 300)).toBe(202);
    const runId = (await db.prisma.monthEndRun.findFirstOrThrow({ orderBy: { id: 'desc' } })).id;
    expect(run.headers.location).toBe(`/admin/month-end/${runId}`);
    expect(run.body).toEqual({
      ok: true,
      runId,
      statusUrl: `/admin/month-end/${runId}`,
      message: `Month-end run #${runId} started; its progress is at /admin/month-end/${runId}.`,
    });
    const ran = await waitForMonthEndRun(admin, run.body.statusUrl);
    expect(ran).toMatchObject({
      outcome: 'succeeded',
      before: '2025-09-15',
      receiptCount: 1,
      noChargeCount: 0,
      skipped: [],
    });
    expect(ran.totals).toEqual([{ currency: 'THB', total: expect.stringMatching(/^\d+(\.\d+)?$/) }]);

    // A browser's form still gets the redirect.
    const second = (await db.prisma.receipt.findFirstOrThrow({ where: { status: 'pending' } })).id;
    const browserForm = (path: string, body: Record<string, string>) =>
      admin
        .post(path)
        .set('Accept', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8')
        .type('form')
        .send({ ...body, csrf_token: token });
    const paidInBrowser = await browserForm(`/admin/receipts/${second}/paid`, {
      method: 'cash',
      amount_received: await amountDueOf(db, second),
    });
    expect(paidInBrowser.status).toBe(303);
    expect(paidInBrowser.headers.location).toBe(`/admin/receipts/${second}`);
    await browserForm(`/admin/receipts/${second}/void`, { reason: 'duplicate' }).expect(303);
    const runInBrowser = await browserForm('/admin/month-end', { before: '2025-09-15' });
    await waitForMonthEndRun(admin, monthEndRunPathOf(runInBrowser));
  });

  it('answers a receipt created for a JSON client with 201 and the receipt, as its refusals are JSON', async () => {
    await buildJobs(db, [
      { user: 'alice', end: '2025-09-10T03:00:00Z' },
      { user: 'alice', end: '2025-09-11T03:00:00Z' },
    ]);
    const token = await csrfTokenOf(alice, '/me');
    const created = await alice
      .post('/me/receipt')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ before: '2025-09-15' });
    expect(created.status, created.text.slice(0, 300)).toBe(201);
    const stored = await db.prisma.receipt.findFirstOrThrow({ where: { username: 'alice' } });
    const url = `/me/receipts/${stored.id}`;
    expect(created.headers.location).toBe(url);
    expect(created.body).toEqual({
      ok: true,
      receipt: {
        id: stored.id,
        status: 'pending',
        before: '2025-09-15',
        total: stored.total.toFixed(2),
        currency: 'THB',
        jobCount: 2,
        unfinishedJobCount: 0,
        url,
      },
      message: `Receipt #${stored.id} created: 2 jobs, total ${stored.total.toFixed(2)} THB.`,
    });
    expect(await db.prisma.receiptItem.count({ where: { receiptId: stored.id } })).toBe(2);
    // Nothing waits in the session: the next page opens without a message.
    expect(flashOf((await html(alice, '/me').expect(200)).text)).toBeUndefined();

    // A receipt of 0.00 says it is settled, as the month-end run's message does.
    await buildJobs(db, [
      { user: 'alice', end: '2025-09-12T03:00:00Z', totalCpuSec: '0', stepMemGbHours: '0', elapsedSec: 0 },
    ]);
    const settled = await alice
      .post('/me/receipt')
      .set('Accept', 'application/json')
      .type('form')
      .send({ before: '2025-09-15', csrf_token: token });
    expect(settled.status, settled.text.slice(0, 300)).toBe(201);
    expect(settled.body).toMatchObject({
      ok: true,
      receipt: { status: 'paid', total: '0.00', currency: 'THB', jobCount: 1 },
      message: expect.stringMatching(/^Receipt #\d+ created: 1 job, total 0\.00 THB, settled as no charge\.$/),
    });

    // Nothing left: the refusal is {error, code}, as before.
    const nothing = await alice
      .post('/me/receipt')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ before: '2025-09-15' });
    expect(nothing.status).toBe(422);
    expect(nothing.body).toEqual({
      error: expect.stringMatching(/^Nothing to bill/),
      code: 422,
      unfinishedJobCount: 0,
    });

    // A browser's form still goes to the receipt, with the JSON answer's message as its flash: the
    // receipt's page alone (its title "Receipt #N") did not say it had just been made.
    await buildJobs(db, [{ user: 'alice', end: '2025-09-13T03:00:00Z' }]);
    const inBrowser = await createReceipt(alice, '2025-09-15');
    expect(inBrowser.status).toBe(303);
    const page = await html(alice, receiptPathOf(inBrowser)).expect(200);
    expect(page.text).toMatch(/<h1>Receipt #\d+<\/h1>/);
    expect(flashOf(page.text)).toMatch(/^Receipt #\d+ created: 1 job, total \d+\.\d\d THB\.$/);
  });

  it('confirms a receipt marked paid or voided on the receipt page it goes back to, once', async () => {
    await buildJobs(db, [
      { user: 'alice', end: '2025-09-09T03:00:00Z' },
      { user: 'alice', end: '2025-09-10T03:00:00Z' },
    ]);
    const id = await billJobsBefore(alice, '2025-09-15');
    const token = await csrfTokenOf(admin, '/admin/receipts');
    const form = (action: string, body: Record<string, string>) =>
      admin
        .post(`/admin/receipts/${id}/${action}`)
        .set('Accept', 'text/html')
        .type('form')
        .send({ ...body, csrf_token: token });

    const amount = await amountDueOf(db, id);
    const paid = await form('paid', {
      method: 'bank_transfer',
      amount_received: amount,
      tx_ref: 'KBANK-9',
      paid_on: '2025-09-20',
    });
    expect(paid.status).toBe(303);
    const paidPage = await html(admin, paid.headers.location as string).expect(200);
    expect(paidPage.text).toContain(`<h1>Receipt #${id}</h1>`);
    expect(paidPage.text).toContain(
      `<div class="alert success" role="status">Receipt #${id} marked paid on 2025-09-20 (bank transfer), ${amount} THB received.</div>`,
    );
    expect((await html(admin, `/admin/receipts/${id}`).expect(200)).text).not.toContain('marked paid on');

    const voided = await form('void', { reason: 'wrong project' });
    expect(voided.status).toBe(303);
    const voidPage = await html(admin, voided.headers.location as string).expect(200);
    // Paid by hand, the money is not the app's to hold: the confirmation says what it was.
    expect(voidPage.text).toMatch(
      new RegExp(
        `<div class="alert success" role="status">Receipt #${id} voided; its 2 jobs can be billed again\\. ` +
          'It was paid by hand: [\\d.,]+ THB by bank transfer, ref KBANK-9, on 2025-09-20\\. The app holds none of ' +
          'this money: return it to the payer or apply it elsewhere\\.</div>',
      ),
    );
  });

  it('refuses a field the money-moving actions do not take, naming it and changing nothing', async () => {
    await buildJobs(db, [{ user: 'alice', end: '2025-09-10T03:00:00Z' }]);
    const id = await billJobsBefore(alice, '2025-09-15');
    const token = await csrfTokenOf(admin, '/admin/receipts');
    const postJson = (path: string, body: object) =>
      admin.post(path).set('Accept', 'application/json').set('X-CSRFToken', token).send(body);

    const paid = await postJson(`/admin/receipts/${id}/paid`, {
      method: 'cash',
      amount_received: await amountDueOf(db, id),
      paid_at: '2025-01-01',
    });
    expect(paid.status).toBe(400);
    expect(paid.body).toEqual({ error: 'input: has an unknown field: paid_at', code: 400 });
    const voided = await postJson(`/admin/receipts/${id}/void`, { reason: 'duplicate', refund: true, notify: 1 });
    expect(voided.body).toEqual({ error: 'input: has unknown fields: refund, notify', code: 400 });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id } })).status).toBe('pending');

    await buildJobs(db, [{ user: 'bob', end: '2025-09-10T03:00:00Z' }]);
    const run = await postJson('/admin/month-end', { before: '2025-09-15', users: ['bob'] });
    expect(run.body).toEqual({ error: 'input: has an unknown field: users', code: 400 });
    const own = await alice
      .post('/me/receipt')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(alice, '/me'))
      .send({ before: '2025-09-15', username: 'bob' });
    expect(own.body).toEqual({ error: 'input: has an unknown field: username', code: 400 });
    expect(await db.prisma.receipt.count()).toBe(1);
    expect(await db.prisma.monthEndRun.count()).toBe(0);
  });

  it('refuses a JSON body that is a list or a bare value, on the JSON parser every other route has', async () => {
    await buildJobs(db, [{ user: 'alice', end: '2025-09-10T03:00:00Z' }]);
    const id = await billJobsBefore(alice, '2025-09-15');
    const token = await csrfTokenOf(admin, '/admin/receipts');
    for (const text of ['[]', '[{"method":"cash"}]', '"x"', '5', 'null']) {
      for (const action of ['paid', 'void']) {
        const response = await admin
          .post(`/admin/receipts/${id}/${action}`)
          .set('Accept', 'application/json')
          .set('Content-Type', 'application/json')
          .set('X-CSRFToken', token)
          .send(text);
        expect(response.status, `${action} ${text}`).toBe(400);
        expect(response.body, `${action} ${text}`).toEqual({
          error: 'The request body must be a JSON object.',
          code: 400,
        });
      }
    }
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id } })).status).toBe('pending');
    expect(
      await db.prisma.auditLog.count({ where: { target: `receipt:${id}`, NOT: { action: 'receipt.create' } } }),
    ).toBe(0);
  });

  it('serves a receipt at one address: an id with leading zeros is refused, on GET and POST, changing nothing', async () => {
    await buildJobs(db, [{ user: 'alice', end: '2025-09-10T03:00:00Z' }]);
    const id = await billJobsBefore(alice, '2025-09-15');
    const token = await csrfTokenOf(admin, '/admin/receipts');
    const REFUSED = { error: 'receipt id: must be written without leading zeros', code: 400 };
    const json = (agent: Agent, path: string) => agent.get(path).set('Accept', 'application/json');
    await html(admin, `/admin/receipts/${id}`).expect(200);
    for (const written of [`0${id}`, `007${id}`]) {
      expect((await json(admin, `/admin/receipts/${written}`)).body, written).toEqual(REFUSED);
      expect((await json(admin, `/admin/receipts/${written}/items.csv`)).body, written).toEqual(REFUSED);
      expect((await json(alice, `/me/receipts/${written}`)).body, written).toEqual(REFUSED);
      const page = await html(admin, `/admin/receipts/${written}`);
      expect(page.status, written).toBe(400);
      expect(page.text).toContain('Receipt number in the address: must be written without leading zeros');
      for (const [action, body] of [
        ['paid', { method: 'cash' }],
        ['void', { reason: 'typed with zeros' }],
      ] as const) {
        const posted = await admin
          .post(`/admin/receipts/${written}/${action}`)
          .set('Accept', 'application/json')
          .set('X-CSRFToken', token)
          .send(body);
        expect(posted.body, `${action} ${written}`).toEqual(REFUSED);
      }
    }
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id } })).status).toBe('pending');
    expect(
      await db.prisma.auditLog.count({ where: { target: `receipt:${id}`, NOT: { action: 'receipt.create' } } }),
    ).toBe(0);
    // A page number is part of the address too: ?page=01 is not page 1 again.
    expect((await json(admin, `/admin/receipts/${id}?page=01`)).body).toEqual({
      error: 'page: must be written without leading zeros',
      code: 400,
    });
  });

  it('shows a refused mark-paid or void on the receipt page, with the reason and what was typed', async () => {
    await buildJobs(db, [{ user: 'alice', end: '2025-09-10T03:00:00Z' }]);
    const id = await billJobsBefore(alice, '2025-09-15');
    const token = await csrfTokenOf(admin, '/admin/receipts');
    const form = (action: string, body: Record<string, string>) =>
      admin
        .post(`/admin/receipts/${id}/${action}`)
        .set('Accept', 'text/html')
        .type('form')
        .send({ ...body, csrf_token: token });
    const onReceiptPage = (page: { text: string }) => {
      expect(page.text).toContain(`<h1>Receipt #${id}</h1>`);
      expect(page.text).toContain('<a href="/admin/receipts">Back to billing</a>');
    };

    const amount = await amountDueOf(db, id);
    const badMethod = await form('paid', { method: 'barter', amount_received: amount, tx_ref: 'GOAT-1' });
    expect(badMethod.status).toBe(400);
    onReceiptPage(badMethod);
    expect(badMethod.text).toContain('Not marked paid. Payment method: must be one of bank_transfer');
    expect(badMethod.text).toContain('value="GOAT-1"');
    // The method is marked, described by the refusal and focused, for a screen reader and the keyboard.
    const paidState = refusedFormStateOf(badMethod.text);
    expect(paidState.invalid).toEqual(['method']);
    expect(paidState.autofocus).toEqual(['method']);
    expect(elementById(badMethod.text, paidState.describedBy.method ?? '')).toMatch(
      /^<div class="alert error no-print" role="alert"[^>]*>Not marked paid\. Payment method:/,
    );

    const shortReason = await form('void', { reason: 'ab' });
    expect(shortReason.status).toBe(400);
    onReceiptPage(shortReason);
    expect(shortReason.text).toContain(
      'Not voided. Reason to void: must say why the receipt is void, in at least 3 characters',
    );
    expect(shortReason.text).toMatch(/id="reason"[^>]* value="ab"/);
    // The reason field is marked, described by the reason and focused, for a screen reader and the keyboard.
    const voidState = refusedFormStateOf(shortReason.text);
    expect(voidState.invalid).toEqual(['reason']);
    expect(voidState.autofocus).toEqual(['reason']);
    expect(elementById(shortReason.text, voidState.describedBy.reason ?? '')).toMatch(
      /^<div class="alert error no-print" role="alert"[^>]*>Not voided\. Reason to void:/,
    );
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id } })).status).toBe('pending');

    await form('paid', { method: 'cheque', amount_received: amount, tx_ref: 'CHQ-7' }).expect(303);
    const paidTwice = await form('paid', { method: 'cash', amount_received: amount });
    expect(paidTwice.status).toBe(409);
    onReceiptPage(paidTwice);
    expect(paidTwice.text).toContain(
      `Not marked paid. Receipt #${id} is paid; only a pending receipt can be marked paid.`,
    );
    // Whatever the day or the amount typed: the receipt's state is the answer, as docs/billing.md says,
    // not a complaint about a field of a payment that cannot be recorded anyway.
    const typedForms: Record<string, string>[] = [
      { paid_on: '2025-09-21', amount_received: amount },
      { amount_received: '1.005' },
    ];
    for (const typed of typedForms) {
      const again = await form('paid', { method: 'cash', ...typed });
      expect(again.status).toBe(409);
      expect(again.text).toContain(
        `Not marked paid. Receipt #${id} is paid; only a pending receipt can be marked paid.`,
      );
    }

    await form('void', { reason: 'wrong project' }).expect(303);
    const voidTwice = await form('void', { reason: 'again' });
    expect(voidTwice.status).toBe(409);
    onReceiptPage(voidTwice);
    expect(voidTwice.text).toContain(`Not voided. Receipt #${id} is already void.`);
    const paidVoid = await form('paid', { method: 'cash', amount_received: amount });
    expect(paidVoid.status).toBe(409);
    expect(paidVoid.text).toContain(
      `Not marked paid. Receipt #${id} is void; only a pending receipt can be marked paid.`,
    );

    // JSON clients keep their {error, code}.
    const api = await admin
      .post(`/admin/receipts/${id}/void`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ reason: 'again' });
    expect(api.body).toEqual({ error: `Receipt #${id} is already void.`, code: 409 });
    // An unknown receipt has no page to go back to: the error page says so.
    const missing = await admin
      .post('/admin/receipts/999999/paid')
      .set('Accept', 'text/html')
      .type('form')
      .send({ method: 'cash', amount_received: amount, csrf_token: token });
    expect(missing.status).toBe(404);
  });

  it('shows a refused month-end run on the billing page with the date as typed', async () => {
    await buildJobs(db, [{ user: 'alice', end: '2025-09-10T03:00:00Z' }]);
    const token = await csrfTokenOf(admin, '/admin/receipts');
    const future = await admin
      .post('/admin/month-end')
      .set('Accept', 'text/html')
      .type('form')
      .send({ before: '2030-01-31', csrf_token: token });
    expect(future.status).toBe(400);
    expect(future.text).toContain('<h1>Billing</h1>');
    expect(future.text).toContain(
      'Month-end run not started. Jobs ended up to and including: 2030-01-31 is in the future; the latest day you can bill is 2025-09-20.',
    );
    expect(future.text).toMatch(/id="before"[^>]* value="2030-01-31"/);
    const futureState = refusedFormStateOf(future.text);
    expect(futureState).toMatchObject({ invalid: ['before'], autofocus: ['before'] });
    expect(elementById(future.text, futureState.describedBy.before ?? '')).toContain('Month-end run not started.');
    const notADate = await admin
      .post('/admin/month-end')
      .set('Accept', 'text/html')
      .type('form')
      .send({ before: '2025-02-30', csrf_token: token });
    expect(notADate.status).toBe(400);
    expect(notADate.text).toContain(
      'Month-end run not started. Jobs ended up to and including: is not a real calendar date',
    );
    const api = await admin
      .post('/admin/month-end')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ before: '2030-01-31' });
    expect(api.body).toEqual({
      error: 'before: 2030-01-31 is in the future; the latest day you can bill is 2025-09-20.',
      code: 400,
    });
    // Refused before anything starts: no run, no receipt.
    expect(await db.prisma.receipt.count()).toBe(0);
    expect(await db.prisma.monthEndRun.count()).toBe(0);
  });

  it.each([
    ['/me/receipt', 'the researcher', '<h1>My usage</h1>', 'No receipt created.'],
    ['/admin/month-end', 'the admin', '<h1>Billing</h1>', 'Month-end run not started.'],
  ])('says that %s needs its date when %s leaves it empty or out', async (path, who, heading, refused) => {
    await buildJobs(db, [{ user: 'alice', end: '2025-09-10T03:00:00Z' }]);
    const agent = who === 'the admin' ? admin : alice;
    const token = await csrfTokenOf(agent, path === '/me/receipt' ? '/me' : '/admin/receipts');
    for (const before of ['', '   ', undefined]) {
      const fields = before === undefined ? {} : { before };
      const page = await agent
        .post(path)
        .set('Accept', 'text/html')
        .type('form')
        .send({ ...fields, csrf_token: token });
      expect(page.status, JSON.stringify(before)).toBe(400);
      expect(page.text).toContain(heading);
      expect(page.text).toContain(`${refused} Jobs ended up to and including: is required`);
      expect(page.text).not.toContain('must be a date as YYYY-MM-DD');
      const api = await agent.post(path).set('Accept', 'application/json').set('X-CSRFToken', token).send(fields);
      expect(api.status).toBe(400);
      expect(api.body).toEqual({ error: 'before: is required', code: 400 });
    }
    expect(await db.prisma.receipt.count()).toBe(0);
  });

  it.each([
    ['/me/receipt', 'the researcher'],
    ['/admin/month-end', 'the admin'],
  ])('names the date %s needs when %s sends no body at all, as a script posting nothing does', async (path, who) => {
    await buildJobs(db, [{ user: 'alice', end: '2025-09-10T03:00:00Z' }]);
    const agent = who === 'the admin' ? admin : alice;
    const token = await csrfTokenOf(agent, path === '/me/receipt' ? '/me' : '/admin/receipts');
    const api = await agent.post(path).set('Accept', 'application/json').set('X-CSRFToken', token);
    expect(api.status).toBe(400);
    expect(api.body).toEqual({ error: 'before: is required', code: 400 });
    expect(await db.prisma.receipt.count()).toBe(0);
    expect(await db.prisma.monthEndRun.count()).toBe(0);
  });

  it('records the day a payment was made, refusing a day in the future or before the receipt, and exports by it', async () => {
    await buildJobs(db, [
      { user: 'alice', end: '2025-08-10T03:00:00Z', jobId: '9701' },
      { user: 'alice', end: '2025-08-16T03:00:00Z', jobId: '9702' },
      { user: 'alice', end: '2025-08-22T03:00:00Z', jobId: '9703' },
    ]);
    const late = await billJobsBefore(alice, '2025-08-12');
    const sameDay = await billJobsBefore(alice, '2025-08-18');
    const today = await billJobsBefore(alice, '2025-08-24');
    // The receipts were made on 2025-08-25 at noon in Bangkok (the database's clock is not the app's).
    const createdAt = new Date('2025-08-25T05:00:00Z');
    await db.prisma.receipt.updateMany({ where: { id: { in: [late, sameDay, today] } }, data: { createdAt } });
    const token = await csrfTokenOf(admin, '/admin/receipts');
    const form = (id: number, body: Record<string, string>) =>
      admin
        .post(`/admin/receipts/${id}/paid`)
        .set('Accept', 'text/html')
        .type('form')
        .send({ ...body, csrf_token: token });
    const postJson = (id: number, body: object) =>
      admin.post(`/admin/receipts/${id}/paid`).set('Accept', 'application/json').set('X-CSRFToken', token).send(body);
    const markPaidAudits = () => db.prisma.auditLog.count({ where: { action: 'receipt.mark_paid' } });
    const auditsBefore = await markPaidAudits();

    const page = await html(admin, `/admin/receipts/${late}`).expect(200);
    expect(page.text).toContain(
      '<input id="paid_on" name="paid_on" type="date" min="2025-08-25" max="2025-09-20" value="2025-09-20">',
    );

    const future = await form(late, {
      method: 'bank_transfer',
      amount_received: await amountDueOf(db, late),
      tx_ref: 'KBANK-31',
      paid_on: '2025-09-21',
    });
    expect(future.status).toBe(400);
    expect(future.text).toContain(
      'Not marked paid. Paid on: 2025-09-21 is in the future; the latest day a payment can be recorded on is today, 2025-09-20.',
    );
    expect(future.text).toContain('value="2025-09-21"');
    expect(refusedFormStateOf(future.text)).toMatchObject({ invalid: ['paid_on'], autofocus: ['paid_on'] });
    const early = await postJson(late, {
      method: 'bank_transfer',
      amount_received: await amountDueOf(db, late),
      paid_on: '2025-08-24',
    });
    expect(early.body).toEqual({
      error: `paid_on: 2025-08-24 is before receipt #${late} was created (2025-08-25); it cannot have been paid earlier.`,
      code: 400,
    });
    const unreal = await postJson(late, {
      method: 'bank_transfer',
      amount_received: await amountDueOf(db, late),
      paid_on: '2025-02-30',
    });
    expect(unreal.status).toBe(400);
    expect(unreal.body.error).toBe('paid_on: is not a real calendar date (2025-02-30)');
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: late } })).status).toBe('pending');
    expect(await markPaidAudits()).toBe(auditsBefore);

    // A transfer of 31 August recorded on 20 September: paid at the start of that Bangkok day.
    await form(late, {
      method: 'bank_transfer',
      amount_received: await amountDueOf(db, late),
      tx_ref: 'KBANK-31',
      paid_on: '2025-08-31',
    }).expect(303);
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: late } })).toMatchObject({
      status: 'paid',
      paidAt: new Date('2025-08-30T17:00:00Z'),
    });
    const audit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'receipt.mark_paid', target: `receipt:${late}` },
    });
    expect(audit.details).toMatchObject({ method: 'bank_transfer', txRef: 'KBANK-31', paidOn: '2025-08-31' });
    for (const [agent, path] of [
      [admin, `/admin/receipts/${late}`],
      [alice, `/me/receipts/${late}`],
    ] as const) {
      expect((await html(agent, path).expect(200)).text).toContain(
        '<dt>Paid on</dt><dd><span class="nowrap">2025-08-31</span> · bank transfer · ref KBANK-31</dd>',
      );
    }

    // Paid on the day the receipt was made: not before it was made.
    const onCreation = await postJson(sameDay, {
      method: 'cash',
      amount_received: await amountDueOf(db, sameDay),
      paid_on: '2025-08-25',
    });
    expect(onCreation.status).toBe(200);
    expect(onCreation.body.receipt).toMatchObject({ paidOn: '2025-08-25', paidAt: createdAt.toISOString() });
    // No day: today, at the moment it was recorded.
    const now = await postJson(today, { method: 'cash', amount_received: await amountDueOf(db, today) });
    expect(now.body.receipt.paidOn).toBe('2025-09-20');
    expect(Date.parse(now.body.receipt.paidAt)).toBeGreaterThan(Date.parse('2025-09-20T04:59:00Z'));

    // paid.csv selects by the day paid and says it.
    const paidCsv = async (window: string) => {
      const [header, ...lines] = (await admin.get(`/admin/paid.csv?${window}`).expect(200)).text.trimEnd().split('\n');
      const columns = (header ?? '').split(',');
      return lines.map((line) => Object.fromEntries(line.split(',').map((value, index) => [columns[index], value])));
    };
    expect(await paidCsv('start=2025-08-01&end=2025-08-31')).toEqual([
      expect.objectContaining({ receipt_id: String(sameDay), paid_on: '2025-08-25', method: 'cash' }),
      expect.objectContaining({
        receipt_id: String(late),
        paid_at: '2025-08-30T17:00:00.000Z',
        paid_on: '2025-08-31',
        tx_ref: 'KBANK-31',
      }),
    ]);
    expect(await paidCsv('start=2025-09-01&end=2025-09-30')).toEqual([
      expect.objectContaining({ receipt_id: String(today), paid_on: '2025-09-20' }),
    ]);
  });

  it.each([
    ['JSON', 'application/json'],
    ['the page', 'text/html'],
  ])('tells the admin in %s which user lost a race to another receipt, and where to find it', async (_as, accept) => {
    const [racedJob] = await buildJobs(db, [
      { user: 'alice', end: '2025-08-20T03:00:00Z' },
      { user: 'bob', end: '2025-08-21T03:00:00Z' },
    ]);
    // Another receipt takes alice's job after the run listed her and before its insert: the
    // stall holds the run there (it reads alice's tier next), the racer's item waits uncommitted.
    const stall = await db.pool.connect();
    const racer = await db.pool.connect();
    let started: request.Response;
    try {
      await stall.query('BEGIN');
      await stall.query('LOCK TABLE tier_overrides IN ACCESS EXCLUSIVE MODE');
      const raced = admin
        .post('/admin/month-end')
        .set('Accept', accept)
        .type('form')
        .send({ before: '2025-08-31', csrf_token: await csrfTokenOf(admin, '/admin/receipts') })
        .then((response) => response);
      expect(await sessionsWaitingForLocks(db.pool)).toBeGreaterThan(0);
      await racer.query('BEGIN');
      const { rows } = await racer.query(
        `INSERT INTO receipts (username, billed_through, total, currency, tier_name, rates_snapshot, rates_locked_at, created_by)
         VALUES ('alice', '2025-08-31', 0, 'THB', 'mu', '{}', now(), 'alice') RETURNING id`,
      );
      await racer.query(
        `INSERT INTO receipt_items (receipt_id, slurm_job_id, cluster, job_key, display_job_id, cpu_hours, gpu_hours, mem_gb_hours, cost, job_end_at)
         SELECT $1, id, cluster, job_key, job_id, 0, 0, 0, 0, end_at FROM slurm_jobs WHERE job_id = $2`,
        [rows[0].id, racedJob],
      );
      await stall.query('COMMIT');
      // The run's insert for alice now waits on the racer's item, then fails on the unique index.
      expect(await transactionsWaitedOn(db.pool)).toBeGreaterThan(0);
      await racer.query('COMMIT');
      started = await raced;
    } finally {
      stall.release();
      racer.release();
    }
    const statusUrl = accept === 'application/json' ? started.body.statusUrl : monthEndRunPathOf(started);
    const ran = await waitForMonthEndRun(admin, statusUrl);
    if (accept === 'application/json') {
      expect(started.status, started.text.slice(0, 300)).toBe(202);
      expect(ran).toMatchObject({
        outcome: 'succeeded',
        receiptCount: 1,
        skipped: [{ username: 'alice', kind: 'billed_meanwhile' }],
      });
    } else {
      const page = await html(admin, statusUrl).expect(200);
      expect(page.text).toContain(`1 receipt created`);
      expect(page.text).toContain(
        '1 user had their jobs billed by another receipt made at the same moment, so this run wrote nothing for ' +
          'them: alice. Find their receipts on the billing page filtered by user (/admin/receipts?user=alice).',
      );
      expect(page.text).not.toContain('Open your receipts');
    }
    expect(
      await db.prisma.receipt.findMany({ select: { username: true, createdBy: true }, orderBy: { id: 'asc' } }),
    ).toEqual([
      { username: 'alice', createdBy: 'alice' },
      { username: 'bob', createdBy: 'boss' },
    ]);
  });

  it.each([
    ['JSON', 'application/json'],
    ['the page', 'text/html'],
  ])('refuses in %s a month-end run while another is in progress, naming who started it', async (_as, accept) => {
    await buildJobs(db, [{ user: 'alice', end: '2025-08-20T03:00:00Z' }]);
    // Another replica's run, holding the lock on its own connection.
    const release = await receiptsRepository.tryAcquireMonthEndLock(db.pool, {
      actor: 'carol',
      startedAt: new Date('2025-09-20T04:30:00Z'),
    });
    expect(release).toBeDefined();
    let refused: request.Response;
    try {
      refused = await admin
        .post('/admin/month-end')
        .set('Accept', accept)
        .type('form')
        .send({ before: '2025-08-31', csrf_token: await csrfTokenOf(admin, '/admin/receipts') });
    } finally {
      await release?.();
    }
    const message =
      'A month-end run is already in progress (started by carol at 2025-09-20 11:30); wait for it to finish.';
    expect(refused.status).toBe(409);
    if (accept === 'application/json') {
      expect(refused.body).toEqual({ error: message, code: 409 });
    } else {
      expect(refused.text).toContain('<h1>Billing</h1>');
      expect(refused.text).toContain(`Month-end run not started. ${message}`);
    }
    expect(await db.prisma.receipt.count()).toBe(0);
    expect(await db.prisma.monthEndRun.count()).toBe(0);
    // Released, the lock lets the next run bill.
    const run = await admin
      .post('/admin/month-end')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin, '/admin/receipts'))
      .send({ before: '2025-08-31' });
    expect(run.status).toBe(202);
    expect(await waitForMonthEndRun(admin, run.body.statusUrl)).toMatchObject({
      outcome: 'succeeded',
      receiptCount: 1,
    });
  });

  it('runs month-end for every user once and reports what it made', async () => {
    await buildJobs(db, [
      { user: 'alice', end: '2025-08-20T03:00:00Z' },
      { user: 'bob', end: '2025-08-21T03:00:00Z' },
      // Cancelled before it ran: its receipt totals 0.00.
      { user: 'trent', end: '2025-08-21T03:00:00Z', totalCpuSec: '0', stepMemGbHours: '0', elapsedSec: 0 },
    ]);
    const token = await csrfTokenOf(admin, '/admin/receipts');
    const run = await admin.post('/admin/month-end').type('form').send({ before: '2025-08-31', csrf_token: token });
    const runPath = monthEndRunPathOf(run);
    await waitForMonthEndRun(admin, runPath);
    const page = await html(admin, runPath).expect(200);
    expect(page.text).toMatch(
      /Month-end run up to 2025-08-31: 3 receipts created, total \d{1,3}(,\d{3})*\.\d{2} THB\. 1 of them total 0 and is settled as no charge\./,
    );
    const second = await admin
      .post('/admin/month-end')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ before: '2025-08-31' });
    expect(second.status).toBe(202);
    expect(await waitForMonthEndRun(admin, second.body.statusUrl)).toMatchObject({
      outcome: 'succeeded',
      receiptCount: 0,
    });
    const third = await admin.post('/admin/month-end').type('form').send({ before: '2025-08-31', csrf_token: token });
    const thirdPath = monthEndRunPathOf(third);
    await waitForMonthEndRun(admin, thirdPath);
    const again = await html(admin, thirdPath).expect(200);
    expect(again.text).toContain('Month-end run up to 2025-08-31: nothing to bill, no receipt created.');
    expect(await db.prisma.receipt.count({ where: { scope: 'admin' } })).toBe(3);
    expect(await db.prisma.receipt.findFirst({ where: { username: 'trent' } })).toMatchObject({
      status: 'paid',
      paymentMethod: 'no_charge',
    });
  });
});

describe('admin pages', () => {
  beforeEach(clearJobs);

  it('renders usage across users with per-user totals and the CSV exports', async () => {
    await buildJobs(db, [
      { user: 'alice', end: '2025-09-18T03:00:00Z', account: 'physics', partition: 'gpu' },
      { user: 'bob', end: '2025-09-18T03:00:00Z', account: 'chemistry' },
    ]);
    const page = await html(admin, '/admin/usage?start=2025-09-14&end=2025-09-20&account=physics').expect(200);
    expect(page.text).toContain('alice');
    expect(page.text).not.toMatch(/>bob</);
    const before = await metricValue(metrics, 'csv_download_total', { kind: 'user_usage' });
    const all = await admin.get('/admin/usage.csv?start=2025-09-14&end=2025-09-20').expect(200);
    const lines = all.text.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/,cost,receipt_id,receipt_status,currency,tier_basis$/);
    expect(lines.slice(1)).toEqual([expect.stringMatching(/,THB,current$/), expect.stringMatching(/,THB,current$/)]);
    expect(await metricValue(metrics, 'csv_download_total', { kind: 'user_usage' })).toBe(before + 1);
    const mine = await admin.get('/admin/my.csv?start=2025-09-14&end=2025-09-20').expect(200);
    expect(mine.text.trim().split('\n')).toHaveLength(1);
    await html(alice, '/admin/usage').expect(302);
  });

  it('totals the billed costs under the usage across users, as it totals the costs', async () => {
    await buildJobs(db, [
      { user: 'alice', end: '2025-09-15T03:00:00Z', elapsedSec: 7200, allocCpus: 3 },
      { user: 'alice', end: '2025-09-18T03:00:00Z' },
      { user: 'bob', end: '2025-09-15T05:00:00Z', elapsedSec: 5400, allocGpus: 1 },
    ]);
    await billJobsBefore(alice, '2025-09-16');
    await billJobsBefore(bob, '2025-09-16');
    const page = (await html(admin, '/admin/usage?start=2025-09-14&end=2025-09-20').expect(200)).text;
    const cells = (row: string) =>
      [...row.matchAll(/<t[dh](?: data-label="[^"]*")? class="num">([^<]*)<\/t[dh]>/g)].map((cell) => cell[1]);
    const amount = (text: string | undefined) => new Prisma.Decimal((text ?? '').replaceAll(',', ''));
    const rows = [
      ...page.matchAll(/<tr><td data-label="User"><a href="\/admin\/receipts\?user=[^"]*">[^<]*<\/a>.*?<\/tr>/g),
    ].map((row) => cells(row[0]));
    const total = cells(/<tfoot>.*<\/tfoot>/s.exec(page)?.[0] ?? '');
    expect(rows).toHaveLength(2);
    const billed = rows.reduce((sum, row) => sum.plus(amount(row[5])), new Prisma.Decimal(0));
    expect(billed.isPositive()).toBe(true);
    expect(total[5]).not.toBe('');
    expect(amount(total[5]).toFixed(2)).toBe(billed.toFixed(2));
    expect(amount(total[4]).toFixed(2)).toBe(
      rows.reduce((sum, row) => sum.plus(amount(row[4])), new Prisma.Decimal(0)).toFixed(2),
    );
  });

  it('shows rates with history and takes the form', async () => {
    const token = await csrfTokenOf(admin, '/admin/rates');
    await admin
      .post('/admin/rates')
      .type('form')
      .send({ type: 'gov', cpu: '0.9', gpu: '18', mem: '0.08', csrf_token: token })
      .expect(303);
    const page = await html(admin, '/admin/rates').expect(200);
    expect(page.text).toContain('0.9');
    expect(page.text).toContain('Rates of gov saved; they apply from now.');
    expect(page.text).toMatch(/History<span class="visually-hidden"> of [a-z]+<\/span> \(2\)/);

    // The same rates again (a double submit, or written differently): nothing new is saved.
    const historyRows = await db.prisma.pricingRate.count();
    const auditEntries = await db.prisma.auditLog.count({ where: { action: 'pricing.rates.set' } });
    await admin
      .post('/admin/rates')
      .type('form')
      .send({ type: 'gov', cpu: '00.90', gpu: '18.0', mem: ' 0.08 ', csrf_token: token })
      .expect(303);
    const unchanged = await html(admin, '/admin/rates').expect(200);
    expect(unchanged.text).toContain('Rates of gov are already these; nothing was saved.');
    expect(unchanged.text).toMatch(/History<span class="visually-hidden"> of [a-z]+<\/span> \(2\)/);
    const viaApi = await admin
      .post('/formula')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ type: 'gov', cpu: 0.9, gpu: 18, mem: 0.08 })
      .expect(200);
    expect(viaApi.body.updated).toMatchObject({ type: 'gov', cpu: '0.90', isChanged: false });
    expect(await db.prisma.pricingRate.count()).toBe(historyRows);
    expect(await db.prisma.auditLog.count({ where: { action: 'pricing.rates.set' } })).toBe(auditEntries);

    const exponent = await admin
      .post('/admin/rates')
      .set('Accept', 'text/html')
      .type('form')
      .send({ type: 'gov', cpu: '1e3', gpu: '18', mem: '0.08', csrf_token: token });
    expect(exponent.status).toBe(400);
    expect(exponent.text).toContain(
      'CPU core-hour: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25',
    );
    expect(await db.prisma.pricingRate.count()).toBe(historyRows);
    const bad = await admin
      .post('/admin/rates')
      .set('Accept', 'text/html')
      .type('form')
      .send({ type: 'gov', cpu: '-3', gpu: '18', mem: '0.08', csrf_token: token });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain(
      'CPU core-hour: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25',
    );
  });

  it('names the tier of a refused rates form and keeps what was typed in it', async () => {
    const token = await csrfTokenOf(admin, '/admin/rates');
    const before = await db.prisma.pricingRate.count();
    const bad = await admin
      .post('/admin/rates')
      .set('Accept', 'text/html')
      .type('form')
      .send({ type: 'gov', cpu: '-3', gpu: '18.5', mem: '0.081', csrf_token: token });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain(
      'Rates of gov not changed. CPU core-hour: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25',
    );
    expect(bad.text).toContain('id="cpu-gov" name="cpu" inputmode="decimal" required value="-3"');
    expect(bad.text).toContain('id="gpu-gov" name="gpu" inputmode="decimal" required value="18.5"');
    expect(bad.text).toContain('id="mem-gov" name="mem" inputmode="decimal" required value="0.081"');
    // The other tiers' forms still show their rates in force.
    expect(bad.text).toContain('id="cpu-mu" name="cpu" inputmode="decimal" required value="0.5"');
    expect(await db.prisma.pricingRate.count()).toBe(before);
  });

  it.each([
    ['-0', 'CPU core-hour: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25'],
    ['-0.00', 'CPU core-hour: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25'],
    ['+1', 'CPU core-hour: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25'],
    ['.5', 'CPU core-hour: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25'],
    ['5.', 'CPU core-hour: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25'],
  ])('refuses the form rate %j, saving no rate and writing no audit entry', async (cpu, message) => {
    const token = await csrfTokenOf(admin, '/admin/rates');
    const rows = await db.prisma.pricingRate.findMany({ orderBy: { id: 'asc' } });
    const audits = await db.prisma.auditLog.count();
    const refused = await admin
      .post('/admin/rates')
      .set('Accept', 'text/html')
      .type('form')
      .send({ type: 'gov', cpu, gpu: '18', mem: '0.08', csrf_token: token });
    expect(refused.status).toBe(400);
    expect(refused.text).toContain(`Rates of gov not changed. ${message}`);
    expect(await db.prisma.pricingRate.findMany({ orderBy: { id: 'asc' } })).toEqual(rows);
    expect(await db.prisma.auditLog.count()).toBe(audits);
  });

  it('reads a rate with leading zeros as the same rate (00.80 is 0.8)', async () => {
    const token = await csrfTokenOf(admin, '/admin/rates');
    await admin
      .post('/admin/rates')
      .type('form')
      .send({ type: 'gov', cpu: '0.8', gpu: '18', mem: '0.08', csrf_token: token })
      .expect(303);
    const rows = await db.prisma.pricingRate.count();
    await admin
      .post('/admin/rates')
      .type('form')
      .send({ type: 'gov', cpu: '00.80', gpu: '018', mem: '0.08', csrf_token: token })
      .expect(303);
    const page = await html(admin, '/admin/rates').expect(200);
    expect(page.text).toContain('Rates of gov are already these; nothing was saved.');
    expect(await db.prisma.pricingRate.count()).toBe(rows);
  });

  it('prices /me with an override made elsewhere from the next cache check, and at once on the worker that made it', async () => {
    let clockMs = Date.parse('2025-09-20T05:00:00Z');
    const worker = buildTestApp(db, { env: { ...env, PRICING_CACHE_CHECK_MS: '60000' }, now: () => new Date(clockMs) });
    const bobHere = await signInAs(worker, 'bob', 'bob-password');
    const tierShown = async () =>
      /tier <strong>(\w+)<\/strong>/.exec((await html(bobHere, '/me').expect(200)).text)?.[1];
    expect(await tierShown()).toBe('mu');

    // Another worker (or an operator's SQL) moves bob to gov: this worker follows at its next check.
    const gov = await db.prisma.pricingTier.findUniqueOrThrow({ where: { name: 'gov' } });
    await db.prisma.tierOverride.create({ data: { username: 'bob', tierId: gov.id, createdBy: 'sql' } });
    expect(await tierShown()).toBe('mu');
    clockMs += 61_000;
    expect(await tierShown()).toBe('gov');

    // Removed through this worker's admin page: this worker shows it on the next request.
    const boss = await signInAs(worker, 'boss', 'boss-password');
    await boss
      .post('/admin/tiers')
      .type('form')
      .send({ username: 'bob', tier: 'mu', csrf_token: await csrfTokenOf(boss, '/admin/tiers') })
      .expect(303);
    expect(await tierShown()).toBe('mu');
  });

  it('sets a tier override and removes it when the natural tier is chosen, both audited', async () => {
    const token = await csrfTokenOf(admin, '/admin/tiers');
    await admin
      .post('/admin/tiers')
      .type('form')
      .send({ username: 'alice', tier: 'gov', csrf_token: token })
      .expect(303);
    expect(await db.prisma.tierOverride.findUnique({ where: { username: 'alice' } })).not.toBeNull();
    expect((await request(app).get('/formula?type=gov')).status).toBe(200);
    const page = await html(admin, '/admin/tiers').expect(200);
    expect(page.text).toMatch(/<td[^>]*>alice<\/td>\s*<td[^>]*>mu<\/td>\s*<td[^>]*>gov<\/td>/);

    await admin
      .post('/admin/tiers')
      .type('form')
      .send({ username: 'alice', tier: 'mu', csrf_token: token })
      .expect(303);
    expect(await db.prisma.tierOverride.findUnique({ where: { username: 'alice' } })).toBeNull();
    const actions = await db.prisma.auditLog.findMany({
      where: { target: 'user:alice', action: { startsWith: 'pricing.override' } },
      orderBy: { id: 'asc' },
      select: { action: true },
    });
    expect(actions.map((entry) => entry.action)).toEqual(['pricing.override.set', 'pricing.override.remove']);

    const noName = await admin
      .post('/admin/tiers')
      .set('Accept', 'text/html')
      .type('form')
      .send({ username: '', tier: 'gov', csrf_token: token });
    expect(noName.status).toBe(400);
    expect(noName.text).toContain('Username: is required');
    expect(noName.text).not.toContain('is not a username');

    const extra = await admin
      .post('/admin/tiers')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ username: 'alice', tier: 'gov', until: '2026-01-01' });
    expect(extra.body).toEqual({ error: 'input: has an unknown field: until', code: 400 });
    expect(await db.prisma.tierOverride.findUnique({ where: { username: 'alice' } })).toBeNull();

    const unknown = await admin
      .post('/admin/tiers')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ username: 'nobody-at-all', tier: 'gov' });
    expect(unknown.status).toBe(404);
  });

  it('changes nothing and writes no audit entry when a user is put on the tier they are on', async () => {
    const token = await csrfTokenOf(admin, '/admin/tiers');
    const choose = async (tier: string) => {
      const response = await admin
        .post('/admin/tiers')
        .type('form')
        .send({ username: 'bob', tier, csrf_token: token })
        .expect(303);
      return (await html(admin, response.headers.location as string).expect(200)).text;
    };
    const { _max } = await db.prisma.auditLog.aggregate({ _max: { id: true } });
    const auditedActions = async () =>
      (
        await db.prisma.auditLog.findMany({
          where: { target: 'user:bob', action: { startsWith: 'pricing.override' }, id: { gt: _max.id ?? 0n } },
          orderBy: { id: 'asc' },
          select: { action: true, details: true },
        })
      ).map((entry) => [entry.action, entry.details]);

    const unchanged = await choose('mu');
    expect(await auditedActions()).toEqual([]);
    expect(unchanged).toContain('bob is already on mu; nothing was changed.');

    expect(await choose('gov')).toContain('bob is now on gov.');
    const override = await db.prisma.tierOverride.findUniqueOrThrow({ where: { username: 'bob' } });
    expect(await choose('gov')).toContain('bob is already on gov; nothing was changed.');
    expect(await db.prisma.tierOverride.findUniqueOrThrow({ where: { username: 'bob' } })).toEqual(override);

    expect(await choose('mu')).toContain('bob is now on mu.');
    expect(await choose('mu')).toContain('bob is already on mu; nothing was changed.');
    expect(await auditedActions()).toEqual([
      ['pricing.override.set', { previous: null, next: 'gov', naturalTier: 'mu' }],
      ['pricing.override.remove', { previous: 'gov', next: null, naturalTier: 'mu' }],
    ]);
  });

  it('renders the billing page with totals by status', async () => {
    const page = await html(admin, '/admin/receipts?status=paid').expect(200);
    expect(page.text).toContain('Month-end run');
    // The month-end date cannot be picked past today (APP_TZ), which the run refuses.
    expect(page.text).toContain('name="before" type="date" required min="1900-01-01" max="2025-09-20"');
    await html(admin, '/admin/receipts?start=2025-13-01').expect(400);
  });

  it('refuses a window that ends before it starts, as the other windows do, keeping what was typed', async () => {
    // Each page names the dates by its own labels (Created from … Created to here); a script reads the keys it sent.
    const message = 'Created from (2026-12-03) is after Created to (2026-12-01).';
    const page = await html(admin, '/admin/receipts?start=2026-12-03&end=2026-12-01&user=alice&status=paid');
    expect(page.status).toBe(400);
    expect(page.text).toContain(message);
    expect(page.text).toContain('value="2026-12-03"');
    expect(page.text).toContain('value="alice"');
    expect(page.text).toContain('<option value="paid" selected>');
    expect(page.text).not.toContain('No receipts match');
    expect(page.text).toContain('Month-end run');
    // Both dates are marked (either may be the one to fix), described by the reason; From is focused.
    const state = refusedFormStateOf(page.text);
    expect(state).toMatchObject({ invalid: ['start', 'end'], autofocus: ['start'] });
    expect(elementById(page.text, state.describedBy.start ?? '')).toContain(message);
    expect(state.describedBy.end).toBe(state.describedBy.start);
    const api = await json(admin, '/admin/receipts?start=2026-12-03&end=2026-12-01');
    expect(api.status).toBe(400);
    expect(api.body).toEqual({ error: 'start (2026-12-03) is after end (2026-12-01).', code: 400 });
    expect((await json(admin, '/admin/paid.csv?start=2026-12-03&end=2026-12-01')).body).toEqual(api.body);
    expect((await html(admin, '/admin/usage?start=2026-12-03&end=2026-12-01').expect(400)).text).toContain(
      'Ended from (2026-12-03) is after Ended to (2026-12-01).',
    );
    await html(admin, '/admin/receipts?start=2026-12-01&end=2026-12-01').expect(200);
  });
});

describe('counts of a thousand and more', () => {
  beforeEach(clearJobs);

  it('are grouped by thousands wherever a page shows them, as money and hours are', async () => {
    await buildJobs(
      db,
      Array.from({ length: 1_200 }, (_, index) => ({
        user: 'alice',
        end: new Date(Date.UTC(2025, 8, 15, 0, 0, index)),
      })),
    );
    const id = await billJobsBefore(alice, '2025-09-15');
    const window = 'start=2025-09-14&end=2025-09-20';

    const usage = (await html(admin, `/admin/usage?${window}`).expect(200)).text;
    expect(usage).toMatch(
      />alice<\/a><\/td><td data-label="Tier" class="tier-name"><span class="tier-share">mu <span class="muted">\(billed\)<\/span><\/span><\/td><td data-label="Jobs" class="num">1,200<\/td>/,
    );
    expect(usage).toContain(
      '<tfoot><tr class="labelled"><th colspan="2" scope="row">Total</th><td data-label="Jobs" class="num">1,200</td>',
    );

    const perDay = (await html(alice, `/me?${window}&view=aggregate`).expect(200)).text;
    expect(perDay).toContain(
      '<tr><th scope="row" data-label="Day">2025-09-15</th><td data-label="Jobs" class="num">1,200</td>',
    );
    expect(perDay).toContain(
      '<tfoot><tr class="labelled"><th scope="row">Total</th><td data-label="Jobs" class="num">1,200</td>',
    );
    const jobs = (await html(alice, `/me?${window}`).expect(200)).text;
    expect(jobs).toContain('1,200 jobs ended in this window.');
    const billed = (await html(alice, `/me?${window}&view=billed`).expect(200)).text;
    expect(billed).toContain('1,200 jobs in this window are on a receipt.');

    expect((await html(alice, '/me/receipts').expect(200)).text).toContain(
      '<td data-label="Jobs" class="num">1,200</td>',
    );
    expect((await html(alice, `/me/receipts/${id}`).expect(200)).text).toContain('of 1,200 (page 1 of 3)');
    expect((await html(admin, '/admin/receipts').expect(200)).text).toContain(
      '<td data-label="Jobs" class="num">1,200</td>',
    );
  });
});

describe('the status cards of /admin/receipts', () => {
  beforeEach(clearJobs);

  /** The text of each status card, tags dropped and spaces collapsed. */
  async function cards(): Promise<Record<string, string>> {
    const page = (await html(admin, '/admin/receipts').expect(200)).text;
    const found: Record<string, string> = {};
    for (const [, status = '', body = ''] of page.matchAll(
      /<div class="card stat"><span class="badge (\w+)">\w+<\/span>([\s\S]*?)<\/div>/g,
    )) {
      found[status] = body
        .replace(/<\/strong><span class="muted">/g, ' / ')
        .replace(/<[^>]+>/g, ' ')
        .replace(/\s+/g, ' ')
        .trim();
    }
    return found;
  }

  it('read "0.00 THB / 0 receipts" for a status without receipts, like the others', async () => {
    expect(await cards()).toEqual({
      pending: '0.00 THB / 0 receipts',
      paid: '0.00 THB / 0 receipts',
      void: '0.00 THB / 0 receipts',
    });
    await buildJobs(db, [{ user: 'alice', end: '2025-09-10T03:00:00Z', allocCpus: 3 }]);
    await billJobsBefore(alice, '2025-09-15');
    const after = await cards();
    expect(after.pending).toMatch(/^\d+\.\d{2} THB \/ 1 receipt$/);
    expect(after.void).toBe('0.00 THB / 0 receipts');
  });
});
