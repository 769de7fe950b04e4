import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ZEnv } from '../../src/config/config.schema.js';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import { PROJECT_ROOT } from '../../src/shared/paths.js';
import { metricNamesIn, metricSelectorsIn } from '../support/promql.js';

// Series Prometheus adds itself to every target.
const PROMETHEUS_SERIES = new Set(['up', 'scrape_duration_seconds', 'scrape_samples_scraped']);

/** Every sample name the app exposes: histograms expose _bucket, _sum and _count. */
async function exposedNames(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const metric of await createMetrics().registry.getMetricsAsJSON()) {
    names.add(metric.name);
    if (String(metric.type) === 'histogram')
      for (const suffix of ['_bucket', '_sum', '_count']) names.add(metric.name + suffix);
  }
  return names;
}

interface DashboardPanel {
  title: string;
  targets?: { expr: string }[];
}

/** Where Grafana draws a panel: columns of a 24-wide grid, rows of 30 px. */
interface GridPos {
  x: number;
  y: number;
  w: number;
  h: number;
}

function readDashboard(): { panels: DashboardPanel[] } {
  return JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'grafana/dashboards/hpc-billing.json'), 'utf8'));
}

function readAlertRules(): { alert: string; expr: string }[] {
  const file = parse(readFileSync(path.join(PROJECT_ROOT, 'prometheus/alerts.yml'), 'utf8')) as {
    groups: { rules: { alert: string; expr: string }[] }[];
  };
  return file.groups.flatMap((group) => group.rules);
}

describe('metricNamesIn', () => {
  it.each([
    ['sum by (method, status) (rate(http_requests_total[$__rate_interval]))', ['http_requests_total']],
    [
      'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{job="x",le!="0.5"}[5m])))',
      ['http_request_duration_seconds_bucket'],
    ],
    [
      'time() - max(slurm_ingest_last_success_timestamp_seconds) > 900',
      ['slurm_ingest_last_success_timestamp_seconds'],
    ],
    ['a_total / ignoring(status) group_left b_total or on() vector(0)', ['a_total', 'b_total']],
    ['up{job="hpc-billing"} == 0 unless foo offset 5m', ['up', 'foo']],
  ])('reads the metric names of %s', (expression, names) => {
    expect(metricNamesIn(expression).sort()).toEqual([...names].sort());
  });
});

describe('the Grafana dashboard and the code agree', () => {
  it('queries only metrics the app exposes', async () => {
    const exposed = await exposedNames();
    const expressions = readDashboard().panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr));
    expect(expressions.length).toBeGreaterThan(10);
    // `up` too: "Readiness" draws an instance Prometheus cannot scrape, which exports nothing, by it.
    const unknown = expressions
      .flatMap(metricNamesIn)
      .filter((name) => !exposed.has(name) && !PROMETHEUS_SERIES.has(name));
    expect(unknown).toEqual([]);
  });

  it('lets whoever imports it pick their Prometheus data source, instead of naming the compose one by uid', () => {
    // Imported into an existing Grafana, a dashboard that names the data source uid `prometheus`
    // shows "Datasource prometheus was not found" on every panel unless the site's happens to have that uid.
    const dashboard = readDashboard() as unknown as {
      panels: { title: string; datasource?: unknown; targets?: { datasource?: unknown }[] }[];
      templating?: { list?: { name: string; type: string; query: string }[] };
    };
    expect(dashboard.templating?.list).toContainEqual(
      expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' }),
    );
    const named = dashboard.panels.flatMap((panel) => [
      panel.datasource,
      ...(panel.targets ?? []).map((t) => t.datasource),
    ]);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JavaScript template
    const variable = '${datasource}';
    const notTheVariable = named.filter(
      (datasource) => datasource !== undefined && (datasource as { uid?: string }).uid !== variable,
    );
    expect(notTheVariable).toEqual([]);
  });

  it('gives every panel one unit: durations in seconds are never drawn on a panel of counts, nor counts on one of seconds', () => {
    // A p95 run duration of 40 s beside 2 runs and 3,000 jobs on one "short" axis read as 40 of
    // something, and squashed the runs to the floor.
    const dashboard = readDashboard() as unknown as {
      panels: (DashboardPanel & { fieldConfig?: { defaults?: { unit?: string }; overrides?: unknown[] } })[];
    };
    const isSeconds = (expression: string) =>
      metricNamesIn(expression).every((name) => /_seconds(_bucket|_sum)?$/.test(name)) &&
      !/_count\b|_total\b/.test(expression);
    const mixed = dashboard.panels
      .filter((panel) => (panel.fieldConfig?.overrides ?? []).length === 0)
      .map((panel) => {
        const kinds = new Set((panel.targets ?? []).map((target) => (isSeconds(target.expr) ? 's' : 'not seconds')));
        const unit = panel.fieldConfig?.defaults?.unit;
        return { title: panel.title, unit, kinds: [...kinds] };
      })
      .filter(({ unit, kinds }) => kinds.length > 1 || (kinds[0] === 's') !== (unit === 's'));
    expect(mixed).toEqual([]);
  });

  it('draws, in some panel or alert, every metric the operations guide tells operators to read', async () => {
    // The guide told operators to watch csv_export_stalled_total and csv_export_refused_total, and no
    // panel or alert showed them: who followed the guide had to write the query themselves.
    const exposed = new Set((await createMetrics().registry.getMetricsAsJSON()).map((metric) => metric.name));
    const guide = readFileSync(path.join(PROJECT_ROOT, 'docs/operations.md'), 'utf8');
    const named = new Set([...guide.matchAll(/`([a-z_]+)[{`]/g)].map((match) => match[1] as string));
    const shown = new Set([
      ...readDashboard().panels.flatMap((panel) =>
        (panel.targets ?? []).flatMap((target) => metricNamesIn(target.expr)),
      ),
      ...readAlertRules().flatMap((rule) => metricNamesIn(rule.expr)),
    ]);
    // Named by the guide for another reason than to be watched (none since AuditChainUnverified
    // reads audit_chain_last_verified_timestamp_seconds).
    const notToWatch = new Set<string>([]);
    const hidden = [...named].filter(
      (name) => exposed.has(name) && !notToWatch.has(name) && ![...shown].some((s) => s.startsWith(name)),
    );
    expect(named.has('csv_export_refused_total')).toBe(true);
    expect(hidden).toEqual([]);
  });

  it('places no panel over another', () => {
    // Grafana pushes an overlapping panel down (or draws it over its neighbour when imported as
    // is): a panel added at a spot already taken moves the rows below it.
    const boxes = (readDashboard() as unknown as { panels: (DashboardPanel & { gridPos: GridPos })[] }).panels;
    const overlaps = boxes.flatMap((a, index) =>
      boxes
        .slice(index + 1)
        .filter(
          (b) =>
            a.gridPos.x < b.gridPos.x + b.gridPos.w &&
            b.gridPos.x < a.gridPos.x + a.gridPos.w &&
            a.gridPos.y < b.gridPos.y + b.gridPos.h &&
            b.gridPos.y < a.gridPos.y + a.gridPos.h,
        )
        .map((b) => `${a.title} / ${b.title}`),
    );
    expect(boxes.every((panel) => panel.gridPos.x + panel.gridPos.w <= 24)).toBe(true);
    expect(overlaps).toEqual([]);
  });

  it('lists every metric the app exports in the operations guide, with its type', async () => {
    // auth_lockout_active_total reads like a gauge of the locks in force; it counts refused
    // attempts. The guide's table says what each name counts, and whether it is a counter.
    const exported = (await createMetrics().registry.getMetricsAsJSON()).map((metric) => ({
      name: metric.name,
      type: String(metric.type),
    }));
    const guide = readFileSync(path.join(PROJECT_ROOT, 'docs/operations.md'), 'utf8');
    const listed = [...guide.matchAll(/^\| `([a-z_]+)` \| (counter|gauge|histogram) \|/gm)].map((match) => ({
      name: match[1] as string,
      type: match[2] as string,
    }));
    const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);
    expect(listed.sort(byName)).toEqual(exported.sort(byName));
  });

  it('says in the operations guide how each gauge combines across workers, as the primary combines it', async () => {
    // The guide listed how every gauge but payments_oldest_open_checkout_timestamp_seconds combines
    // with WEB_CONCURRENCY > 1: summed, as counters are, it would be 4 timestamps added up, and
    // NoWebhooks reads it. Each gauge's name (or `prefix_*`) is followed by how it combines.
    const guide = readFileSync(path.join(PROJECT_ROOT, 'docs/operations.md'), 'utf8');
    const paragraph = /^- With `WEB_CONCURRENCY` > 1 the worker that receives the scrape[\s\S]*?(?=\n- )/m.exec(
      guide,
    )?.[0];
    expect(paragraph).toBeDefined();
    const text = (paragraph ?? '').replace(/\s+/g, ' ');
    const WORDS = { sum: 'summed', min: 'minimum', max: 'maximum' } as const;
    const gauges = (await createMetrics().registry.getMetricsAsJSON()).filter(
      (metric) => String(metric.type) === 'gauge',
    );
    const said = gauges.map((gauge) => {
      const named = [...text.matchAll(/`([a-z_]+)(\*?)`/g)].find(
        ([, name = '', star]) => name === gauge.name || (star === '*' && gauge.name.startsWith(name)),
      );
      const after = named === undefined ? '' : text.slice(named.index);
      const word = /\b(summed|minimum|maximum)\b/.exec(after)?.[1] ?? 'not said';
      return { name: gauge.name, combines: word };
    });
    const expected = gauges.map((gauge) => ({
      name: gauge.name,
      combines: WORDS[(gauge as { aggregator?: keyof typeof WORDS }).aggregator ?? 'sum'],
    }));
    expect(said).toEqual(expected);
  });

  it('has the panels the operations guide promises', () => {
    const titles = readDashboard().panels.map((panel) => panel.title);
    expect(titles).toEqual(
      expect.arrayContaining([
        'Requests by method and status',
        '5xx ratio',
        'Latency p50 / p95 / p99',
        'Top 5 slow endpoints by p95',
        'Login failures and lockouts',
        'Receipts created and marked paid',
        'CSV downloads',
        'CSV exports stalled and refused',
        'Webhook events',
        'Checkouts closed at the provider',
        'Ingestion freshness',
        'Ingestion runs and jobs',
        'Ingestion run duration',
      ]),
    );
  });
});

describe('every query reads the app\'s own series (job="hpc-billing"), as the operations guide says', () => {
  // Imported into a site's Prometheus, which scrapes other services too, a dashboard query
  // without the job summed their http_requests_total, http_request_duration_seconds and
  // db_pool_* into this app's panels, while the alerts the panels explain read only this
  // app's: the "5xx ratio" a HighErrorRate page points to showed another service's errors.
  const queries = [
    ...readDashboard().panels.flatMap((panel) =>
      (panel.targets ?? []).map((target) => ({ where: `panel ${panel.title}`, expr: target.expr })),
    ),
    ...readAlertRules().map((rule) => ({ where: `alert ${rule.alert}`, expr: rule.expr })),
  ];

  it('in every selector of every panel and alert', () => {
    const unscoped = queries.flatMap(({ where, expr }) =>
      metricSelectorsIn(expr)
        .filter(({ matchers }) => !/\bjob="hpc-billing"/.test(matchers))
        .map(({ selector }) => `${where}: ${selector}`),
    );
    expect(queries.length).toBeGreaterThan(20);
    expect(unscoped).toEqual([]);
  });
});

describe("the dashboard's panel descriptions", () => {
  // Grafana shows a panel's description as its (i) tooltip: what someone looking at a red panel
  // reads first. "Webhook events" said "None for 2 hours raises NoWebhooks", which the rule has
  // not done since it learned when a webhook is due, and most panels said what they show but not
  // what to do about it.
  const panels = () =>
    (readDashboard() as unknown as { panels: (DashboardPanel & { description?: string })[] }).panels.map((panel) => ({
      ...panel,
      description: panel.description ?? '',
    }));
  const rules = readAlertRules();

  it('each say what the panel shows and, after "Do:", what to do about it', () => {
    const incomplete = panels()
      .filter(({ description }) => {
        const [shows = '', todo = ''] = description.split(/\bDo: /);
        return shows.trim().length < 40 || todo.trim().length < 40;
      })
      .map((panel) => panel.title);
    expect(incomplete).toEqual([]);
  });

  it('name the alert of each metric an alert rule reads, and no alert that does not exist', () => {
    const alertOf = new Map<string, string[]>();
    for (const rule of rules) {
      for (const name of metricNamesIn(rule.expr)) alertOf.set(name, [...(alertOf.get(name) ?? []), rule.alert]);
    }
    const alerts = new Set(rules.map((rule) => rule.alert));
    const problems = panels().flatMap(({ title, description, targets = [] }) => {
      const read = new Set(targets.flatMap((target) => metricNamesIn(target.expr)));
      const expected = new Set([...read].flatMap((name) => alertOf.get(name) ?? []));
      const named = [...description.matchAll(/\b[A-Z][a-z]+(?:[A-Z][a-z0-9]+)+\b/g)].map((match) => match[0]);
      return [
        ...[...expected].filter((alert) => !named.includes(alert)).map((alert) => `${title}: does not name ${alert}`),
        ...named.filter((alert) => !alerts.has(alert)).map((alert) => `${title}: names ${alert}, which is no alert`),
      ];
    });
    expect(problems).toEqual([]);
  });

  it('describe NoWebhooks as its rule fires: only while a webhook is due, refused deliveries not counting', () => {
    const rule = rules.find((candidate) => candidate.alert === 'NoWebhooks');
    // The conditions the description restates, as the rule has them.
    expect(rule?.expr).toContain('[2h])) == 0');
    expect(rule?.expr).toContain('[1d])) > 0');
    expect(rule?.expr).toContain('payments_oldest_open_checkout_timestamp_seconds');
    expect(rule?.expr).toContain('> 7200');
    expect(rule?.expr).toContain('outcome!~"bad_signature|error"');
    // The panels that draw what NoWebhooks reads; others may point to it by name.
    const drawing = panels().filter(({ targets = [] }) =>
      targets.some((target) => metricNamesIn(target.expr).includes('payments_webhook_events_total')),
    );
    expect(drawing.map((panel) => panel.title)).toEqual(['Webhook events']);
    for (const { title, description } of drawing) {
      expect(description, title).not.toMatch(/none for 2 hours raises NoWebhooks/i);
      expect(description, title).toMatch(/2 hours/);
      expect(description, title).toMatch(/last day/);
      expect(description, title).toMatch(/checkout (has been )?open for over 2 hours/);
      expect(description, title).toMatch(/bad_signature/);
      expect(description, title).toMatch(/PAYMENT_PROVIDER=none/);
    }
  });
});

describe("the dashboard's lockout legends", () => {
  // auth_lockout_start_total counts the wrong password that started locks, once, and
  // auth_lockout_end_total each lock as it ends: legends "lockout started" and "lockout ended"
  // read as one unit, so ends above starts looked like a bug (the /metrics HELP text says it).
  const legendOf = (metric: string) =>
    (readDashboard() as unknown as { panels: { targets?: { expr: string; legendFormat?: string }[] }[] }).panels
      .flatMap((panel) => panel.targets ?? [])
      .filter((target) => metricNamesIn(target.expr).includes(metric))
      .map((target) => target.legendFormat ?? '');

  it('name the wrong passwords that started locks, and the locks that ended', () => {
    const starts = legendOf('auth_lockout_start_total');
    const ends = legendOf('auth_lockout_end_total');
    expect(starts).toHaveLength(1);
    expect(ends).toHaveLength(1);
    expect(starts[0]).toMatch(/wrong password/);
    expect(ends[0]).toMatch(/\blocks ended\b/);
  });
});

/**
 * The http_* selectors of an expression, each with the endpoints its `endpoint!~"…"` leaves out
 * (read as Prometheus does: the regex anchored at both ends).
 */
function httpSelectorsIn(expression: string): { selector: string; isLeftOut: (endpoint: string) => boolean }[] {
  return [...expression.matchAll(/\bhttp_request[a-z_]*(\{[^}]*\})?/g)].map(([selector, labels = '']) => {
    const pattern = /endpoint!~"((?:[^"\\]|\\.)*)"/.exec(labels)?.[1];
    // The text is PromQL's string: \\. in it is the regex's \.
    const regex = pattern === undefined ? undefined : new RegExp(`^(?:${pattern.replace(/\\\\/g, '\\')})$`);
    return { selector, isLeftOut: (endpoint: string) => regex?.test(endpoint) ?? false };
  });
}

describe('the service-level figures leave out the probes', () => {
  // Load balancers and Kubernetes probe /healthz and /readyz every few seconds: counted, their
  // fast 200s diluted the 5xx ratio and the percentiles, and /readyz's 503s of a drain or of an
  // unreachable database (AppNotReady's to report) read as failed requests.
  const PROBES = ['/healthz', '/readyz'];
  const sloExpressions = [
    ...readAlertRules()
      .filter((rule) => ['HighErrorRate', 'HighLatencyP95'].includes(rule.alert))
      .map((rule) => ({ where: `alert ${rule.alert}`, expr: rule.expr })),
    ...readDashboard()
      .panels.filter((panel) => ['5xx ratio', 'Latency p50 / p95 / p99'].includes(panel.title))
      .flatMap((panel) =>
        (panel.targets ?? []).map((target) => ({ where: `panel ${panel.title}`, expr: target.expr })),
      ),
  ];

  it('in every alert and panel of the SLOs', () => {
    expect(sloExpressions).toHaveLength(2 + 4);
    const counted = sloExpressions.flatMap(({ where, expr }) =>
      httpSelectorsIn(expr).flatMap(({ selector, isLeftOut }) =>
        PROBES.filter((probe) => !isLeftOut(probe)).map((probe) => `${where}: ${selector} counts ${probe}`),
      ),
    );
    expect(counted).toEqual([]);
  });

  it('and nothing else but the CSV downloads of the latency figures', () => {
    for (const { where, expr } of sloExpressions) {
      for (const { selector, isLeftOut } of httpSelectorsIn(expr)) {
        for (const endpoint of ['/', '/me', '/me/receipts/:id', 'unmatched', 'before_route', '/readyz/x']) {
          expect(isLeftOut(endpoint), `${where}: ${selector} leaves out ${endpoint}`).toBe(false);
        }
        if (selector.includes('duration')) expect(isLeftOut('/admin/paid.csv'), `${where}: ${selector}`).toBe(true);
      }
    }
  });
});

describe("the dashboard's count panels", () => {
  // A panel of counts draws increase() at every step. Over $__rate_interval (at least 4 scrapes,
  // 1 minute) at Grafana's step for the time range (15-20 s over a few hours), the windows of
  // neighbouring points overlapped and each event was drawn 3 or 4 times: one receipt read as
  // 1.1, 1.3, 1.1, and 42 failed sign-ins in a live Prometheus summed to 163 over the points.
  // Each point counts its own step instead ($__interval), which the panel's min interval keeps at
  // 1 minute or more, so that a window holds enough scrapes for increase().
  const MIN_INTERVAL_SEC = 60;
  const seconds = (interval: string) => {
    const match = /^(\d+)(s|m|h)$/.exec(interval);
    return match ? Number(match[1]) * { s: 1, m: 60, h: 3600 }[match[2] as 's' | 'm' | 'h'] : 0;
  };
  const countPanels = (readDashboard().panels as (DashboardPanel & { interval?: string })[]).filter((panel) =>
    (panel.targets ?? []).some((target) => /\bincrease\(/.test(target.expr)),
  );

  it('count each event at one point: increase() over the step, never over overlapping windows', () => {
    expect(countPanels.length).toBeGreaterThanOrEqual(7);
    const overlapping = countPanels.flatMap((panel) =>
      (panel.targets ?? [])
        .filter((target) => /\bincrease\([^)]*\[\$__rate_interval\]\)/.test(target.expr))
        .map((target) => `${panel.title}: ${target.expr}`),
    );
    expect(overlapping).toEqual([]);
    for (const panel of countPanels) {
      for (const target of panel.targets ?? []) {
        if (/\bincrease\(/.test(target.expr)) expect(target.expr, panel.title).toContain('[$__interval])');
      }
    }
  });

  it('set a min interval of at least a minute, so each step holds 4 scrapes of 15 s', () => {
    for (const panel of countPanels) {
      expect(seconds(panel.interval ?? ''), `${panel.title}: interval ${panel.interval}`).toBeGreaterThanOrEqual(
        MIN_INTERVAL_SEC,
      );
    }
  });
});

/** Every annotation of every alert rule (summary, description, runbook), with where it is. */
function readAlertAnnotations(): { where: string; text: string }[] {
  const file = parse(readFileSync(path.join(PROJECT_ROOT, 'prometheus/alerts.yml'), 'utf8')) as {
    groups: { rules: { alert: string; annotations?: Record<string, string> }[] }[];
  };
  return file.groups.flatMap((group) =>
    group.rules.flatMap((rule) =>
      Object.entries(rule.annotations ?? {}).map(([key, text]) => ({ where: `${rule.alert} ${key}`, text })),
    ),
  );
}

describe('what a page and a panel tell the operator to look at', () => {
  // IngestionSourceFailing said "an expired or wrong SLURM_JWT": the app has no such setting (its
  // JWT is SLURMRESTD_TOKEN or SLURMRESTD_TOKEN_FILE), so whoever was paged looked for it in vain.
  const texts = () => [
    ...readAlertAnnotations(),
    ...(readDashboard() as unknown as { panels: { title: string; description?: string }[] }).panels.map((panel) => ({
      where: `panel ${panel.title}`,
      text: panel.description ?? '',
    })),
  ];

  it('names only settings the app reads', () => {
    const settings = new Set(Object.keys(ZEnv.shape));
    const unknown = texts().flatMap(({ where, text }) =>
      [...text.matchAll(/\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b/g)]
        .map((match) => match[0])
        .filter((name) => !settings.has(name))
        .map((name) => `${where}: ${name}`),
    );
    expect(unknown).toEqual([]);
  });

  it('gives queries to paste that read the app\'s own series (job="hpc-billing"), as the rules do', async () => {
    // HighErrorRate's description offered sum by (endpoint, status) (rate(http_requests_total{status=~"5.."}[5m])):
    // pasted into a Prometheus that scrapes other services too, it listed their 5xx beside this app's.
    const exposed = await exposedNames();
    const unscoped = texts().flatMap(({ where, text }) =>
      [...text.matchAll(/\b([a-z_:][a-z0-9_:]*)(\{[^}]*\})/g)]
        .filter(([, name = '']) => exposed.has(name))
        .filter(([, , matchers = '']) => !/\bjob=(["'])hpc-billing\1/.test(matchers))
        .map(([selector]) => `${where}: ${selector}`),
    );
    expect(unscoped).toEqual([]);
  });
});

describe('the alert rules and the code agree', () => {
  it('read only metrics the app exposes (or Prometheus adds)', async () => {
    const exposed = await exposedNames();
    const unknown = readAlertRules()
      .flatMap((rule) => metricNamesIn(rule.expr))
      .filter((name) => !exposed.has(name) && !PROMETHEUS_SERIES.has(name));
    expect(unknown).toEqual([]);
  });

  it('each say what happened, what to do, and link a runbook section that exists', () => {
    // A page at 3 a.m. shows the annotations, not this repository: "what to do" must travel with it.
    const file = parse(readFileSync(path.join(PROJECT_ROOT, 'prometheus/alerts.yml'), 'utf8')) as {
      groups: { rules: { alert: string; annotations?: Record<string, string> }[] }[];
    };
    const guide = readFileSync(path.join(PROJECT_ROOT, 'docs/operations.md'), 'utf8');
    const anchors = new Set([...guide.matchAll(/^#{2,4} (.+)$/gm)].map((match) => (match[1] as string).toLowerCase()));
    const incomplete = file.groups
      .flatMap((group) => group.rules)
      .filter(({ annotations = {} }) => {
        const anchor = /^docs\/operations\.md#(\w+)$/.exec(annotations.runbook ?? '')?.[1];
        return !annotations.summary || !annotations.description || !anchor || !anchors.has(anchor);
      })
      .map((rule) => rule.alert);
    expect(incomplete).toEqual([]);
  });

  it('include every alert the operations guide describes', () => {
    expect(readAlertRules().map((rule) => rule.alert)).toEqual(
      expect.arrayContaining([
        'HighErrorRate',
        'HighLatencyP95',
        'NoWebhooks',
        'AppNotReady',
        'IngestionStale',
        'IngestionSourceFailing',
        'AuditChainBroken',
        'SchemaAheadOfCode',
        'AppNotScraped',
        'AuditChainUnverified',
        'SlurmrestdTokenExpiring',
        'IngestionFallbackBroken',
      ]),
    );
  });
});

describe("the dashboard's instance filter", () => {
  // With several replicas "Readiness" drew min(hpc_ready): a 0 said some instance was not ready,
  // not which one (AppNotReady's page names it), and no panel could be narrowed to one replica.
  // A variable `instance` (every instance by default) now filters the panels.
  const dashboard = readDashboard() as unknown as {
    panels: { title: string; targets?: { expr: string; legendFormat?: string }[] }[];
    templating?: {
      list?: {
        name: string;
        type: string;
        query?: unknown;
        definition?: string;
        multi?: boolean;
        includeAll?: boolean;
        allValue?: string | null;
        current?: { value?: unknown };
        datasource?: { uid?: string };
      }[];
    };
  };
  const FILTER = 'instance=~"$instance"';
  // The same on every instance, whichever one is picked: the newest successful run in the
  // database (read at every scrape), as IngestionStale reads it over all instances.
  const WHOLE_SERVICE_ONLY = new Set(['Ingestion freshness']);
  // Panels of instance-level values: one series per instance, named in the legend.
  const PER_INSTANCE = new Set(['Readiness and audit chain', 'Database pool']);

  it('is a multi-select of the instances exporting hpc_ready, "All" by default', async () => {
    const variable = dashboard.templating?.list?.find((candidate) => candidate.name === 'instance');
    expect(variable).toBeDefined();
    expect(variable?.type).toBe('query');
    expect(variable?.multi).toBe(true);
    expect(variable?.includeAll).toBe(true);
    // "All" matches every instance, also one that started after the list was read.
    expect(variable?.allValue).toBe('.*');
    expect(variable?.current?.value).toEqual(['$__all']);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JavaScript template
    expect(variable?.datasource?.uid).toBe('${datasource}');
    const query = typeof variable?.query === 'string' ? variable.query : (variable?.query as { query?: string })?.query;
    expect(variable?.definition).toBe(query);
    const metric = /^label_values\(([a-z_]+)\{job="hpc-billing"\}, instance\)$/.exec(query ?? '')?.[1];
    // Every instance exports it, whatever its settings (no series appears only after an event).
    expect(metric).toBe('hpc_ready');
    expect(await exposedNames()).toContain(metric);
  });

  it('filters every selector of every panel but those that mean the whole database', () => {
    expect(
      [...WHOLE_SERVICE_ONLY, ...PER_INSTANCE].every((title) => dashboard.panels.some((p) => p.title === title)),
    ).toBe(true);
    const unfiltered = dashboard.panels
      .filter((panel) => !WHOLE_SERVICE_ONLY.has(panel.title))
      .flatMap((panel) =>
        (panel.targets ?? []).flatMap((target) =>
          metricSelectorsIn(target.expr)
            .filter(({ matchers }) => !matchers.includes(FILTER))
            .map(({ selector }) => `${panel.title}: ${selector}`),
        ),
      );
    expect(unfiltered).toEqual([]);
    const filtered = dashboard.panels
      .filter((panel) => WHOLE_SERVICE_ONLY.has(panel.title))
      .flatMap((panel) => (panel.targets ?? []).filter((target) => target.expr.includes('$instance')))
      .map((target) => target.expr);
    expect(filtered).toEqual([]);
  });

  it('draws one series per instance, named in the legend, on the instance-level panels, and sums the others', () => {
    const problems = dashboard.panels.flatMap((panel) =>
      (panel.targets ?? []).flatMap((target) => {
        const legend = target.legendFormat ?? '';
        const groupings = [...target.expr.matchAll(/\b(sum|min|max|avg|count)\s*(?:by\s*\(([^)]*)\)\s*)?\(/g)].map(
          ([, , labels = '']) => labels.split(',').map((label) => label.trim()),
        );
        const keepsInstance = groupings.every((labels) => labels.includes('instance'));
        if (PER_INSTANCE.has(panel.title)) {
          return [
            ...(legend.includes('{{instance}}') ? [] : [`${panel.title}: legend "${legend}" names no instance`]),
            ...(keepsInstance ? [] : [`${panel.title}: ${target.expr} aggregates the instances away`]),
          ];
        }
        // A service-level panel sums the instances picked, as its alert sums all of them.
        return legend.includes('{{instance}}') || groupings.some((labels) => labels.includes('instance'))
          ? [`${panel.title}: ${target.expr} splits by instance`]
          : [];
      }),
    );
    expect(problems).toEqual([]);
  });
});
