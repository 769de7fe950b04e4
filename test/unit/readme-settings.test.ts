import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ZEnv } from '../../src/config/config.schema.js';
import { PROJECT_ROOT } from '../../src/shared/paths.js';

/** README's settings tables: each row's variables with the default written for each. */
function readmeSettings(): { name: string; documented: string }[] {
  const readme = readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8');
  return [...readme.matchAll(/^\| ((?:`[A-Z][A-Z0-9_]+`(?: \/ )?)+) \| ((?:[^|\\]|\\.)+) \|/gm)].flatMap(
    ([, names = '', defaults = '']) => {
      const variables = [...names.matchAll(/`([A-Z0-9_]+)`/g)].map((match) => match[1] as string);
      // `A` / `B` | `1` / `2`: one default each; a single default (or prose) is the row's.
      const parts = defaults.trim().split(' / ');
      return variables.map((name, index) => ({
        name,
        documented: ((parts.length === variables.length ? parts[index] : undefined) ?? defaults).trim(),
      }));
    },
  );
}

/** What the schema makes of the setting left unset, as README would write it. */
function defaultOf(name: string): string | undefined {
  const schema = (ZEnv.shape as Record<string, { safeParse(value: unknown): { success: boolean; data?: unknown } }>)[
    name
  ];
  const parsed = schema?.safeParse(undefined);
  if (!parsed?.success) return undefined;
  if (parsed.data === true) return '1';
  if (parsed.data === false) return '0';
  return typeof parsed.data === 'number' || typeof parsed.data === 'string' ? String(parsed.data) : undefined;
}

describe("README's settings tables and the configuration schema", () => {
  // An operator sets what README lists, trusting the default it gives: a setting listed that the
  // schema does not read would be ignored without a word, and a default that differs from the
  // schema's is a surprise in production.
  const rows = readmeSettings();

  it('list every setting the app reads, and only those', () => {
    const documented = rows.map((row) => row.name).sort();
    expect(new Set(documented).size).toBe(documented.length);
    expect(documented).toEqual(Object.keys(ZEnv.shape).sort());
  });

  it('give each fixed default as the schema applies it', () => {
    // Only a plain `value` is compared: prose ("(unset)", "`1` (prod), `0` (dev)") is a default that
    // depends on other settings, which config.test.ts covers.
    // Three plain ones are resolved by loadConfig, not the schema: TRUST_PROXY's `false` (the schema's
    // 0 hops), SLURMRESTD_API_VERSION's `auto` (unset asks the server) and PUBLIC_BASE_URL's
    // http://localhost:PORT (from PORT).
    const resolvedLater = new Set(['TRUST_PROXY', 'SLURMRESTD_API_VERSION', 'PUBLIC_BASE_URL']);
    const fixed = rows.filter((row) => /^`[^`]+`$/.test(row.documented) && !resolvedLater.has(row.name));
    expect(fixed.length).toBeGreaterThan(40);
    const differing = fixed
      .map((row) => ({ name: row.name, readme: row.documented.slice(1, -1), schema: defaultOf(row.name) }))
      .filter((row) => row.readme !== row.schema);
    expect(differing).toEqual([]);
  });
});

describe("README's production example", () => {
  it('makes neither SESSION_SECRET nor AUDIT_CHAIN_KEY anew where it sets them', () => {
    // `export AUDIT_CHAIN_KEY=$(openssl rand -hex 32)`, pasted into a start script, sealed each start's
    // entries with a new key: the next start read the audit log as broken (AuditChainBroken, checked on
    // a production start), and a new SESSION_SECRET each time signed everyone out.
    const readme = readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8');
    const example = /^## Running in production\n[^#]*?```sh\n([\s\S]*?)```/m.exec(readme)?.[1] ?? '';
    expect(example).toContain('AUDIT_CHAIN_KEY=');
    expect(example).not.toMatch(/\b(SESSION_SECRET|AUDIT_CHAIN_KEY)=\$\(/);
  });
});
