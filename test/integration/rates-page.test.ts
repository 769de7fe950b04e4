import { Prisma } from '@prisma/client';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// The page a person reaches from the header's "Rates" link, next to the /formula JSON it explains.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
const NOW = new Date('2025-09-20T05:00:00Z');
// Asia/Bangkok, so the page's times are visibly local (UTC+7).
const env = { APP_TZ: 'Asia/Bangkok', PRICING_CACHE_CHECK_MS: '0' };

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'alice' });
  app = buildTestApp(db, { env, now: () => NOW });
});
afterAll(() => db?.drop());

const page = (path = '/rates') => request(app).get(path).set('Accept', 'text/html');

async function addTier(tier: {
  name: string;
  description?: string;
  isDefault?: boolean;
  rates: { cpu: string; gpu: string; mem: string; from: string }[];
}) {
  await db.prisma.pricingTier.create({
    data: {
      name: tier.name,
      description: tier.description ?? '',
      isDefault: tier.isDefault ?? false,
      rates: {
        create: tier.rates.map((rate) => ({
          cpuPerHour: new Prisma.Decimal(rate.cpu),
          gpuPerHour: new Prisma.Decimal(rate.gpu),
          memPerHour: new Prisma.Decimal(rate.mem),
          currency: 'THB',
          effectiveFrom: new Date(rate.from),
          createdBy: 'test',
        })),
      },
    },
  });
}

/** The text of a page's table row of a tier, tags removed. */
function rowOf(html: string, tier: string): string {
  const row = new RegExp(`<tr id="tier-${tier}">([\\s\\S]*?)</tr>`).exec(html)?.[1];
  if (row === undefined) throw new Error(`no row for tier ${tier}`);
  return row
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

describe('the header and home page', () => {
  it('send a visitor to the rates page rather than the JSON of /formula', async () => {
    const home = (await page('/').expect(200)).text;
    expect(home).toContain('<a href="/rates">Rates</a>');
    expect(home).toContain('href="/rates">Current rates</a>');
    expect(home).not.toContain('href="/formula">Rates');
    expect(home).not.toContain('href="/formula">Current rates');
  });

  it('link the price list for everyone: "Rates" for visitors and researchers, "Price list" for admins', async () => {
    /** The main navigation's links, as [href, text]. */
    const navOf = (html: string) => {
      const nav = /<nav class="nav" aria-label="Main">([\s\S]*?)<\/nav>/.exec(html)?.[1] ?? '';
      return [...nav.matchAll(/<a href="([^"]*)"[^>]*>([^<]*)<\/a>/g)].map((link) => [link[1], link[2]]);
    };
    expect(navOf((await page('/').expect(200)).text)).toEqual([
      ['/rates', 'Rates'],
      ['/login', 'Sign in'],
    ]);
    const alice = await signInAs(app, 'alice', 'alice-password');
    expect(navOf((await alice.get('/me/receipts').set('Accept', 'text/html').expect(200)).text)).toEqual([
      ['/me', 'My usage'],
      ['/me/receipts', 'Receipts'],
      ['/rates', 'Rates'],
      ['/account', 'Account'],
    ]);
    // An admin's rates page is the one that sets them, "Edit rates", a card on /admin.
    await buildUser(db.prisma, { username: 'ops', role: 'admin' });
    const ops = await signInAs(app, 'ops', 'ops-password');
    const admin = (await ops.get('/admin').set('Accept', 'text/html').expect(200)).text;
    expect(navOf(admin)).toEqual([
      ['/me', 'My usage'],
      ['/me/receipts', 'Receipts'],
      ['/rates', 'Price list'],
      ['/admin', 'Admin'],
      ['/account', 'Account'],
    ]);
    expect(admin).toMatch(/<a class="card tile" href="\/admin\/rates">\s*<h2>Edit rates<\/h2>/);
  });

  it('titles the page that sets rates "Edit rates", apart from the price list\'s "Rates", as its card on /admin reads', async () => {
    const ops = await signInAs(app, 'ops', 'ops-password');
    const titleOf = (html: string) => /<title>([^<]*)<\/title>/.exec(html)?.[1];
    const headingOf = (html: string) => /<h1>([^<]*)<\/h1>/.exec(html)?.[1];
    const setting = (await ops.get('/admin/rates').set('Accept', 'text/html').expect(200)).text;
    expect(titleOf(setting)).toBe('Edit rates · HPC Billing');
    expect(headingOf(setting)).toBe('Edit rates');
    const list = (await ops.get('/rates').set('Accept', 'text/html').expect(200)).text;
    expect(titleOf(list)).toBe('Rates · HPC Billing');
    expect(headingOf(list)).toBe('Rates');
  });
});

describe('before the first tier exists', () => {
  it('says there are no rates yet, with a 200 page and not a server error', async () => {
    const response = await page().expect(200);
    expect(response.headers['content-type']).toMatch(/^text\/html/);
    expect(response.text).toContain(
      'No pricing tier has rates yet; an administrator must add one on the Rates page (/admin/rates).',
    );
    expect(response.text).toContain("How a job's cost is computed");
    expect(response.text).not.toContain('<table>');
    // /formula is for programs: a 404 JSON error whose reason says no rates are configured.
    expect((await request(app).get('/formula').expect(404)).body.reason).toBe('no_pricing_tiers');
  });
});

describe('with tiers', () => {
  beforeAll(async () => {
    await addTier({
      name: 'mu',
      description: 'University members',
      isDefault: true,
      rates: [
        { cpu: '0.5', gpu: '12', mem: '0.05', from: '2025-01-01T00:00:00Z' },
        { cpu: '0.123456', gpu: '12.5', mem: '0.000001', from: '2025-09-01T03:30:00Z' },
      ],
    });
    await addTier({
      name: 'gov',
      description: '<script>alert("x")</script> & <b>agencies</b>',
      rates: [
        { cpu: '0.8', gpu: '18', mem: '0.08', from: '2025-06-01T00:00:00Z' },
        { cpu: '0.9', gpu: '19', mem: '0.09', from: '2025-10-01T00:00:00Z' },
      ],
    });
  });

  it('lists every tier with its rates in force, exactly as stored, the currency and since when', async () => {
    const html = (await page().expect(200)).text;
    expect(rowOf(html, 'mu')).toBe('mu (default tier) University members 0.123456 12.50 0.000001 THB 2025-09-01 10:30');
    expect(rowOf(html, 'gov')).toContain('0.80 18.00 0.08 THB 2025-06-01 07:00');
    // The rates that are no longer in force are not offered as prices.
    expect(html).not.toContain('>0.50<');
  });

  it('shows rates entered for a later date as scheduled, under the rates in force', async () => {
    const html = (await page().expect(200)).text;
    const gov = html.slice(html.indexOf('id="tier-gov"'));
    expect(gov.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ')).toContain(
      '0.08 THB 2025-06-01 07:00 0.90 19.00 0.09 THB 2025-10-01 07:00 (scheduled)',
    );
  });

  it('reads on a phone: the table stacks, and every cell names its column', async () => {
    const html = (await page().expect(200)).text;
    const table = /<table class="stack">([\s\S]*?)<\/table>/.exec(html)?.[1] ?? '';
    const columns = [...table.matchAll(/<th[^>]*>([^<]*)<\/th>/g)].map((match) => match[1]);
    const rows = [...table.matchAll(/<tr([^>]*)>([\s\S]*?)<\/tr>/g)].slice(1);
    const labelsOf = (attributes: string) =>
      rows
        .filter((row) => row[1] === attributes)
        .map((row) => [...(row[2] ?? '').matchAll(/<td data-label="([^"]*)"/g)].map((cell) => cell[1]));
    // A tier's first row has every column; its scheduled rates, in the row below, the rates' own.
    expect(labelsOf(' id="tier-mu"')).toEqual([columns]);
    expect(labelsOf(' id="tier-gov"')).toEqual([columns]);
    expect(labelsOf(' class="continued"')).toEqual([columns.slice(2)]);
    expect(rows).toHaveLength(3);
    expect(table.match(/<td data-label="[^"]+"/g)).toHaveLength(table.match(/<td/g)?.length ?? -1);
  });

  it('lets a long description wrap beside the largest rates, rather than push the columns after it off the page', async () => {
    await addTier({
      name: 'wide',
      description: 'A tier for the long-running projects of the partner institutes, '.repeat(3).trim(),
      rates: [{ cpu: '999999.999999', gpu: '999999.999999', mem: '999999.999999', from: '2025-01-01T00:00:00Z' }],
    });
    try {
      const html = (await page().expect(200)).text;
      const row = /<tr id="tier-wide">([\s\S]*?)<\/tr>/.exec(html)?.[1] ?? '';
      expect(row).toMatch(/<td data-label="Description" class="wrap"[^>]*>A tier for the long-running/);
      expect(row).toContain('<td data-label="CPU core-hour" class="num">999,999.999999</td>');
    } finally {
      await db.prisma.pricingRate.deleteMany({ where: { tier: { name: 'wide' } } });
      await db.prisma.pricingTier.delete({ where: { name: 'wide' } });
    }
  });

  it("escapes a tier's description instead of running it as HTML", async () => {
    const html = (await page().expect(200)).text;
    expect(html).not.toContain('<script>alert');
    expect(html).not.toContain('<b>agencies</b>');
    expect(html).toContain('&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;agencies&lt;/b&gt;');
  });

  it('explains the formula in words and links to /formula for programs', async () => {
    const html = (await page().expect(200)).text;
    expect(html).toContain('cost = CPU core-hours × CPU rate + GPU-hours × GPU rate + memory GB-hours × memory rate');
    expect(html).toContain("the CPU time the job's steps used (Slurm's TotalCPU)");
    expect(html).toContain('<a href="/formula">/formula</a>');
  });

  it('says a new rate bills every unbilled job on a later receipt, not only the jobs run after it', async () => {
    // "New rates apply from the moment shown" read as the jobs of before being billed at the old rates: a
    // receipt prices all its jobs at the rates in force when it is made (docs/pricing.md).
    const text = (html: string) => html.replace(/<[^>]+>/g, '').replace(/\s+/g, ' ');
    expect(text((await page().expect(200)).text)).toContain(
      'New rates apply from the moment shown to every receipt created from then, for all the jobs on it, including jobs that ran before;',
    );
    const ops = await signInAs(app, 'ops', 'ops-password');
    expect(text((await ops.get('/admin/rates').set('Accept', 'text/html').expect(200)).text)).toContain(
      'A change applies from now on to receipts created afterwards, for every unbilled job on them, including jobs that ended before the change;',
    );
  });

  it('describes CPU core-hours as allocated when PRICING_CPU_BASIS=allocated', async () => {
    const allocated = buildTestApp(db, { env: { ...env, PRICING_CPU_BASIS: 'allocated' }, now: () => NOW });
    const html = (await request(allocated).get('/rates').set('Accept', 'text/html').expect(200)).text;
    expect(html).toContain('the CPUs allocated to the job × its elapsed time in hours');
    expect(html).not.toContain("Slurm's TotalCPU");
  });

  it('marks rates entered for a later date as scheduled in the admin history too, in the same words', async () => {
    /** The rows of a tier's history on /admin/rates, newest first, tags removed. */
    const historyOf = (html: string, tier: string) => {
      const card = html.slice(html.indexOf(`<section class="card" id="tier-${tier}">`));
      const body = /<tbody>([\s\S]*?)<\/tbody>/.exec(card.slice(0, card.indexOf('</section>')))?.[1] ?? '';
      return [...body.matchAll(/<tr[^>]*>([\s\S]*?)<\/tr>/g)].map((row) =>
        (row[1] ?? '')
          .replace(/<[^>]+>/g, ' ')
          .replace(/\s+/g, ' ')
          .trim(),
      );
    };
    // No form schedules rates (POST /formula and the Rates page refuse effective_from), so SQL does.
    await db.pool.query(
      `INSERT INTO pricing_rates (tier_id, cpu_per_hour, gpu_per_hour, mem_per_hour, currency, effective_from, created_by)
       SELECT id, 0.2, 13, 0.002, 'THB', '2025-12-01T00:00:00Z', 'sql' FROM pricing_tiers WHERE name = 'mu'`,
    );
    try {
      await buildUser(db.prisma, { username: 'treasurer', role: 'admin' });
      const admin = await signInAs(app, 'treasurer', 'treasurer-password');
      const html = (await admin.get('/admin/rates').set('Accept', 'text/html').expect(200)).text;
      expect(historyOf(html, 'mu')).toEqual([
        '2025-12-01 07:00 (scheduled) 0.20 13.00 0.002 THB sql',
        '2025-09-01 10:30 (current) 0.123456 12.50 0.000001 THB test',
        '2025-01-01 07:00 0.50 12.00 0.05 THB test',
      ]);
      expect(historyOf(html, 'gov')).toEqual([
        '2025-10-01 07:00 (scheduled) 0.90 19.00 0.09 THB test',
        '2025-06-01 07:00 (current) 0.80 18.00 0.08 THB test',
      ]);
      // The price list says the same of the same row.
      const priceList = (await page().expect(200)).text.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
      expect(priceList).toContain('0.20 13.00 0.002 THB 2025-12-01 07:00 (scheduled)');
    } finally {
      await db.pool.query(`DELETE FROM pricing_rates WHERE created_by = 'sql'`);
    }
  });

  it('is readable without signing in, and a signed-in user keeps their own navigation on it', async () => {
    const visitor = (await page().expect(200)).text;
    expect(visitor).toContain('<a href="/login">Sign in</a>');
    const alice = await signInAs(app, 'alice', 'alice-password');
    const signedIn = (await alice.get('/rates').set('Accept', 'text/html').expect(200)).text;
    expect(signedIn).toContain('Sign out (alice)');
    expect(rowOf(signedIn, 'mu')).toContain('0.123456');
  });

  it('leaves /formula as the JSON it was', async () => {
    const formula = await request(app).get('/formula').expect(200);
    expect(formula.headers['content-type']).toMatch(/^application\/json/);
    expect(formula.headers.etag).toBeDefined();
    expect(formula.body).toEqual({
      type: 'mu',
      unit: 'per-hour',
      rates: { cpu: '0.123456', gpu: '12.50', mem: '0.000001' },
      currency: 'THB',
    });
  });
});
