import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ZEnv } from '../../src/config/config.schema.js';
import { PROJECT_ROOT } from '../../src/shared/paths.js';

// The app's settings that docker-compose.yml does not pass on from .env, and why.
const NOT_PASSED_ON: Record<string, string> = {
  HOST: "the image's 0.0.0.0",
  PORT: "the image's 8000, published as APP_PORT",
  DATA_DIR: 'the embedded demo database only',
  DEMO_SEED: 'never seeded in production',
  PAYMENT_WEBHOOK_SECRET: 'the dummy provider, refused in production',
  SACCT_PATH: 'the image has no sacct',
  SACCT_TIMEOUT_MS: 'the image has no sacct',
  SACCTMGR_PATH: 'the image has no sacct',
};

const appSettings = Object.keys(ZEnv.shape);

interface AppService {
  environment: Record<string, string | null>;
  stop_grace_period?: string;
}

function readAppService(): AppService {
  const compose = parse(readFileSync(path.join(PROJECT_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
    services: { app: AppService };
  };
  return compose.services.app;
}

function readAppEnvironment(): Record<string, string | null> {
  return readAppService().environment;
}

/** Compose's duration (`30s`, `1m30s`) in seconds; unset is Docker's default, 10 s. */
function gracePeriodSeconds(duration = '10s'): number {
  const parts = [...duration.matchAll(/(\d+)(h|m|s)/g)];
  expect(parts.map((part) => part[0]).join(''), `stop_grace_period ${duration}`).toBe(duration);
  return parts.reduce((total, [, amount, unit]) => total + Number(amount) * { h: 3600, m: 60, s: 1 }[unit as 'h'], 0);
}

/** `NAME=value` lines of .env.example, commented out (`# NAME=value`) or not. */
function readEnvExample(): { name: string; isSet: boolean }[] {
  const lines = readFileSync(path.join(PROJECT_ROOT, '.env.example'), 'utf8').split('\n');
  return lines.flatMap((line) => {
    const match = /^(#\s*)?([A-Z][A-Z0-9_]*)=/.exec(line);
    return match?.[2] ? [{ name: match[2], isSet: !match[1] }] : [];
  });
}

describe('docker-compose.yml and .env.example', () => {
  it("give the app container every setting of the app's, but those with a reason not to", () => {
    const passed = Object.keys(readAppEnvironment());
    const expected = appSettings.filter((name) => !(name in NOT_PASSED_ON));
    expect([...passed].sort()).toEqual([...expected].sort());
  });

  it('refuse to render without the secrets, rather than fall back to a value everyone knows', () => {
    // POSTGRES_PASSWORD fell back to `hpc_billing`: an operator who forgot it in .env ran production
    // on the database password printed in this file. Each secret is `${NAME:?why}`, never `${NAME:-x}`.
    const composeText = readFileSync(path.join(PROJECT_ROOT, 'docker-compose.yml'), 'utf8');
    // GRAFANA_ADMIN_PASSWORD fell back to `admin`: Grafana's admin was admin/admin until someone changed it.
    for (const secret of ['POSTGRES_PASSWORD', 'SESSION_SECRET', 'AUDIT_CHAIN_KEY', 'GRAFANA_ADMIN_PASSWORD']) {
      const uses = [...composeText.matchAll(new RegExp(`\\$\\{${secret}([^}]*)\\}`, 'g'))].map((match) => match[1]);
      expect(uses.length, secret).toBeGreaterThan(0);
      for (const use of uses) expect(use, secret).toMatch(new RegExp(`^:\\?set ${secret} `));
    }
  });

  it('leave REQUIRE_HTTPS to .env: compose itself keeps production secure', () => {
    expect(readAppEnvironment().REQUIRE_HTTPS).toBeNull();
  });

  it('.env.example names only what the app or compose reads, and sets nothing but the trial', () => {
    const composeText = readFileSync(path.join(PROJECT_ROOT, 'docker-compose.yml'), 'utf8');
    const composeVariables = new Set([...composeText.matchAll(/\$\{([A-Z][A-Z0-9_]*)/g)].map((match) => match[1]));
    const passed = new Set(Object.keys(readAppEnvironment()));
    const example = readEnvExample();
    const unknown = example.filter(({ name }) => !composeVariables.has(name) && !passed.has(name));
    expect(unknown.map(({ name }) => name)).toEqual([]);
    // Secrets are the operator's to generate (the quick start appends them), never a shared value.
    expect(example.filter(({ isSet }) => isSet).map(({ name }) => name)).toEqual(['REQUIRE_HTTPS']);
  });

  it('give the app longer to stop than a 10 s drain and the shutdown timeout, so Docker does not kill it mid-close', () => {
    const env = ZEnv.parse({});
    // The drain a load balancer needs (docs/operations.md: 5-10 s), the close, and a few seconds to close the pool.
    const neededSeconds = (10_000 + env.SHUTDOWN_TIMEOUT_MS) / 1000 + 5;
    expect(gracePeriodSeconds(readAppService().stop_grace_period)).toBeGreaterThanOrEqual(neededSeconds);
  });

  it('call postgres healthy only once it takes TCP connections, as migrate and the app make', () => {
    // On a new volume the image's entrypoint runs a temporary server on the Unix socket alone while
    // it creates the database, then stops it and starts the real one. pg_isready without a host asks
    // that socket, so it said healthy during the temporary server: migrate connected to postgres:5432,
    // was refused or cut as it stopped, exited 1, and the app (service_completed_successfully) never
    // started on the first `docker compose up`. Over 127.0.0.1 only the real server answers.
    const compose = parse(readFileSync(path.join(PROJECT_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
      services: Record<string, { healthcheck?: { test?: string[] } }>;
    };
    const test = compose.services.postgres?.healthcheck?.test ?? [];
    const command = test.slice(1).join(' ');
    expect(command).toMatch(/\bpg_isready\b/);
    expect(command).toMatch(/(-h|--host[= ])\s*127\.0\.0\.1\b/);
  });

  it("publish Prometheus, Grafana and Alertmanager on the host's loopback only unless .env says otherwise", () => {
    // Prometheus has no sign-in and Grafana's admin was admin/admin until its password was set:
    // "9090:9090" and "3000:3000" put both on every interface of the host.
    const compose = parse(readFileSync(path.join(PROJECT_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
      services: Record<string, { ports?: string[] }>;
    };
    for (const service of ['prometheus', 'grafana', 'alertmanager']) {
      const published = (compose.services[service]?.ports ?? []).map((port) =>
        // As compose reads it with the variable unset: ${NAME:-default} is the default.
        port.replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1'),
      );
      expect(published.length, service).toBeGreaterThan(0);
      for (const port of published) expect(port, service).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
    }
  });

  it('send the alerts Prometheus fires to an Alertmanager of its own, which routes them to a receiver', () => {
    // prometheus/alerts.yml had rules and prometheus.yml no `alerting:` section, nor compose an
    // Alertmanager: a firing AppDown showed on Prometheus's Alerts page and reached no one.
    const compose = parse(readFileSync(path.join(PROJECT_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
      services: Record<string, { image?: string; command?: string[]; volumes?: string[]; depends_on?: string[] }>;
    };
    const prometheus = parse(readFileSync(path.join(PROJECT_ROOT, 'prometheus/prometheus.yml'), 'utf8')) as {
      alerting?: { alertmanagers?: { static_configs?: { targets?: string[] }[] }[] };
    };
    const targets = (prometheus.alerting?.alertmanagers ?? []).flatMap((manager) =>
      (manager.static_configs ?? []).flatMap((config) => config.targets ?? []),
    );
    expect(targets).toEqual(['alertmanager:9093']);
    const service = compose.services.alertmanager;
    expect(service?.image).toMatch(/^prom\/alertmanager:v\d+\.\d+\.\d+$/);
    expect(compose.services.prometheus?.depends_on).toContain('alertmanager');

    // The config file it is started with is the one in the checkout, mounted where it reads it.
    const configFlag = service?.command?.find((argument) => argument.startsWith('--config.file='));
    const mounted = configFlag?.slice('--config.file='.length) ?? '';
    const mount = (service?.volumes ?? [])
      .map((volume) => volume.split(':'))
      .find(([, target]) => target !== undefined && mounted.startsWith(`${target}/`));
    expect(mount?.[0]).toBe('./alertmanager');
    const configPath = path.join(PROJECT_ROOT, 'alertmanager', path.relative(mount?.[1] ?? '', mounted));
    const config = parse(readFileSync(configPath, 'utf8')) as {
      route: { receiver: string; routes?: { receiver?: string }[] };
      receivers: { name: string }[];
      inhibit_rules?: { source_matchers?: string[]; target_matchers?: string[]; equal?: string[] }[];
    };
    const receivers = config.receivers.map((receiver) => receiver.name);
    for (const route of [config.route, ...(config.route.routes ?? [])]) expect(receivers).toContain(route.receiver);

    // Its inhibitions name alerts that exist.
    const alerts = parse(readFileSync(path.join(PROJECT_ROOT, 'prometheus/alerts.yml'), 'utf8')) as {
      groups: { rules: { alert: string }[] }[];
    };
    const alertNames = new Set(alerts.groups.flatMap((group) => group.rules.map((rule) => rule.alert)));
    const inhibited = (config.inhibit_rules ?? []).flatMap((rule) => [
      ...(rule.source_matchers ?? []),
      ...(rule.target_matchers ?? []),
    ]);
    for (const matcher of inhibited) {
      const alert = /^alertname\s*=\s*"?([A-Za-z0-9]+)"?$/.exec(matcher)?.[1];
      expect(alertNames.has(alert ?? ''), matcher).toBe(true);
    }
    // An inhibition without `equal` mutes its target whatever fires it: AppNotReady of one replica
    // (its own network, a long drain) muted IngestionStale for every replica. A rule decides
    // instead (IngestionStale leaves out only a database that no instance reaches).
    const unbounded = (config.inhibit_rules ?? []).filter((rule) => (rule.equal ?? []).length === 0);
    expect(unbounded).toEqual([]);
  });
});
