import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SRC, sourceFiles } from '../support/source-files.js';

/**
 * The repository modules a file imports functions from: a namespace import, or a named one that is
 * neither a type (`import type` is allowed anywhere) nor an error class to test with instanceof.
 */
function repositoryValueImportsOf(source: string): string[] {
  const imports = source.matchAll(/^import\s+(type\s+)?([^;]*?)\s+from\s+'([^']+\.repository\.js)';/gms);
  return [...imports]
    .filter(([, isTypeOnly, clause = '']) => {
      if (isTypeOnly) return false;
      const named = /^\{([^}]*)\}$/s.exec(clause.trim());
      if (!named) return true;
      return (named[1] ?? '')
        .split(',')
        .map((name) => name.trim())
        .some((name) => name !== '' && !name.startsWith('type ') && !/^\w*Error$/.test(name));
    })
    .map(([, , , from = '']) => from);
}

/** One import of a file: where from, whether `import type`, and the functions and values it names. */
interface ImportOf {
  from: string;
  isTypeOnly: boolean;
  /** `import * as x` or a default import: everything the module exports is in reach. */
  isWhole: boolean;
  /** The names of a `{ ... }` import that are not `type` ones, as exported (before any `as`). */
  valueNames: string[];
}

function importsOf(source: string): ImportOf[] {
  return [...source.matchAll(/^import\s+(type\s+)?([^;]*?)\s+from\s+'([^']+)';/gms)].map(
    ([, isTypeOnly, clause = '', from = '']) => {
      const named = /^\{([^}]*)\}$/s.exec(clause.trim());
      const valueNames = (named?.[1] ?? '')
        .split(',')
        .map((name) => name.trim())
        .filter((name) => name !== '' && !name.startsWith('type '))
        .map((name) => name.split(/\s+as\s+/)[0] ?? name);
      return { from, isTypeOnly: Boolean(isTypeOnly), isWhole: !named, valueNames: isTypeOnly ? [] : valueNames };
    },
  );
}

/** The functions that append to the audit log (audit.service.ts): a service records its own entries. */
const AUDIT_WRITERS = new Set(['recordAudit', 'appendAudit']);

/** A route's imports that write the audit log: a writer by name, or the whole audit service or repository. */
function auditWriterImportsOf(source: string): string[] {
  return importsOf(source)
    .filter(({ from, isTypeOnly, isWhole, valueNames }) => {
      if (isTypeOnly || !/(^|\/)audit\.(service|repository)\.js$/.test(from)) return false;
      return isWhole || from.endsWith('audit.repository.js') || valueNames.some((name) => AUDIT_WRITERS.has(name));
    })
    .map(({ from }) => from);
}

/**
 * A route's imports that build CSV text: csv-stringify (any entry point) or the project's own writer
 * (src/http/csv-format.ts) for anything but its types. A service (or a presenter beside it) builds the rows.
 */
function csvBuilderImportsOf(source: string): string[] {
  return importsOf(source)
    .filter(({ from, isTypeOnly, isWhole, valueNames }) => {
      if (isTypeOnly) return false;
      if (from === 'csv-stringify' || from.startsWith('csv-stringify/')) return true;
      return /(^|\/)csv-format\.js$/.test(from) && (isWhole || valueNames.length > 0);
    })
    .map(({ from }) => from);
}

/** The functions a file imports by name from a service module (`*.service.js`), as the file calls them. */
function serviceFunctionNamesOf(source: string): Set<string> {
  const named = [...source.matchAll(/^import\s+\{([^}]*)\}\s+from\s+'[^']+\.service\.js';/gms)];
  return new Set(
    named.flatMap(([, clause = '']) =>
      clause
        .split(',')
        .map((name) => name.trim())
        .filter((name) => name !== '' && !name.startsWith('type '))
        .map((name) => name.split(/\s+as\s+/).pop() ?? name),
    ),
  );
}

/**
 * A route's service calls that take what another service call returned (`const filter = await
 * auditFilterOf(...)`, then `streamAuditCsv(db, filter)`): the route is then running the service's
 * steps itself. A service call is a function imported by name from a service, or a method of the
 * object the first call was made on (`receipts.find`, then `receipts.send`).
 */
function chainedServiceCallsOf(source: string): string[] {
  const services = serviceFunctionNamesOf(source);
  const receiverOf = (callee: string) => (callee.includes('.') ? callee.slice(0, callee.lastIndexOf('.')) : undefined);
  const isServiceCall = (callee: string, first: string) => {
    const receiver = receiverOf(callee);
    if (receiver === undefined) return services.has(callee) && services.has(first);
    return receiver === receiverOf(first) && !['res', 'req'].includes(receiver);
  };
  return [...source.matchAll(/\bconst\s+(\w+)\s*=\s*await\s+((?:\w+\.)*\w+)\(/g)].flatMap(
    ({ 0: match, 1: name = '', 2: first = '', index = 0 }) => {
      const after = source.slice(index + match.length);
      return [...after.matchAll(/\b((?:\w+\.)*\w+)\(([^()]*)\)/g)]
        .filter(([, callee = '', args = '']) => callee !== first && new RegExp(`\\b${name}\\b`).test(args))
        .filter(([, callee = '']) => isServiceCall(callee, first))
        .map(([, callee]) => `${first} -> ${callee}`);
    },
  );
}

/**
 * The errors of a window's rules (From after To, From after today) a file imports to throw: in a
 * route, the rule itself is in the route, where a service checks the window (resolveWindow, auditLogPage).
 */
const WINDOW_RULE_ERRORS = new Set(['ReversedWindowError', 'StartAfterTodayError']);
function windowRuleErrorsOf(source: string): string[] {
  return importsOf(source).flatMap(({ valueNames }) => valueNames.filter((name) => WINDOW_RULE_ERRORS.has(name)));
}

/** Whether a file reads the environment itself: `process.env`, `process['env']`, or `env` from node:process. */
function readsEnvironment(source: string): boolean {
  return (
    /\bprocess\s*(\.\s*env\b|\[\s*['"`]env['"`]\s*\])/.test(source) ||
    /import\s+\{[^}]*\benv\b[^}]*\}\s+from\s+'(node:)?process'/.test(source)
  );
}

/** The pure cores docs/development.md names: pricing and Slurm parsing. */
const PURE_CORES = [
  'modules/pricing/pricing.ts',
  'modules/ingestion/sacct.parser.ts',
  'modules/ingestion/slurm-rest.parser.ts',
  'modules/ingestion/slurm-time.parser.ts',
  'modules/ingestion/slurm-job.model.ts',
];

/**
 * What makes a module impure, in its source: an import of a repository, a service, the database,
 * the configuration, the logger or the HTTP layer, or a read of the clock, the environment or the filesystem.
 */
function impuritiesOf(source: string): string[] {
  const imports = importsOf(source)
    .filter(({ isTypeOnly }) => !isTypeOnly)
    .map(({ from }) => from)
    .filter((from) =>
      /\.(repository|service)\.js$|\/(db|config|http)\/|\/logger\.js$|^node:(fs|fs\/promises|child_process|net|http|https)$|^pg$/.test(
        from,
      ),
    );
  const reads = [...source.matchAll(/\bnew Date\(\)|\bDate\.now\(\)|\bprocess\.\w+/g)].map(([read]) => read);
  return [...imports, ...reads];
}

/** The code lines of a file that query through Prisma: a model's query method, or raw SQL through the client. */
function prismaQueriesOf(source: string): string[] {
  const query =
    /\b(tx|prisma)\.(\w+\.)?(findMany|findUnique|findUniqueOrThrow|findFirst|findFirstOrThrow|create|createMany|update|updateMany|upsert|delete|deleteMany|count|aggregate|groupBy)\(|\$(queryRaw|executeRaw)(Unsafe)?[(`]/;
  return source
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => !line.startsWith('*') && !line.startsWith('//') && !line.startsWith('/*'))
    .filter((line) => query.test(line));
}

/** A schema's imports of a repository, types included: a zod schema does not depend on the data layer. */
function repositoryImportsOf(source: string): string[] {
  return importsOf(source)
    .filter(({ from }) => /\.repository\.js$/.test(from))
    .map(({ from }) => from);
}

// docs/development.md, "Architecture": routes call a service, and services hand repositories their
// transaction. The app's wiring (src/app.ts), the server and the command-line tools are the outside
// of that too: they reach the database through a service, not by calling a repository themselves.
describe('layering', () => {
  it('no route, nor any file outside src/modules/, calls a repository directly', () => {
    const offenders = sourceFiles(SRC)
      .filter((file) => file.endsWith('.routes.ts') || !file.startsWith(path.join(SRC, 'modules') + path.sep))
      .flatMap((file) =>
        repositoryValueImportsOf(readFileSync(file, 'utf8')).map((from) => `${path.relative(SRC, file)} -> ${from}`),
      );
    expect(offenders).toEqual([]);
  });

  // The pg pool's direct users docs/development.md names: the session store (and the migrations and
  // the CSV exports' COPY, which live in src/db/ and a repository). Every other module queries in a repository.
  it('no module file but a repository (or the session store) sends SQL itself', () => {
    const offenders = sourceFiles(path.join(SRC, 'modules'))
      .filter((file) => !file.endsWith('.repository.ts') && !file.endsWith(`${path.sep}session.store.ts`))
      .filter((file) =>
        /\b(queryWithin|queryPrepared)(<[^>]*>)?\(|\.query(<[^>]*>)?\(/.test(readFileSync(file, 'utf8')),
      )
      .map((file) => path.relative(SRC, file));
    expect(offenders).toEqual([]);
  });

  // docs/development.md: repositories are the only files that query through Prisma (src/db/ holds the
  // client's own plumbing); a service opens the transaction and hands it to them.
  it('no file but a repository (or src/db/) queries through Prisma', () => {
    const offenders = sourceFiles(SRC)
      .filter((file) => !file.endsWith('.repository.ts') && !file.startsWith(path.join(SRC, 'db') + path.sep))
      .flatMap((file) =>
        prismaQueriesOf(readFileSync(file, 'utf8')).map((line) => `${path.relative(SRC, file)}: ${line}`),
      );
    expect(offenders).toEqual([]);
  });

  it('sees a Prisma query in code, and lets a comment or another aggregate through', () => {
    expect(prismaQueriesOf('const n = await tx.receipt.count({ where });')).toEqual([
      'const n = await tx.receipt.count({ where });',
    ]);
    expect(prismaQueriesOf('await db.prisma.user.findUnique({ where: { id } });')).toHaveLength(1);
    expect(prismaQueriesOf('const rows = await tx.$queryRaw`SELECT 1`;')).toHaveLength(1);
    expect(prismaQueriesOf(' * "Invalid `prisma.$queryRaw()` invocation:" Prisma puts first.')).toEqual([]);
    expect(prismaQueriesOf('AggregatorRegistry.aggregate([earlier, dead]);')).toEqual([]);
  });

  it('sees a value import of a repository, and lets a type-only one through', () => {
    expect(repositoryValueImportsOf("import { findOldestOpenCheckouts } from './x/payments.repository.js';")).toEqual([
      './x/payments.repository.js',
    ]);
    expect(repositoryValueImportsOf("import * as repo from '../m/ingestion.repository.js';")).toEqual([
      '../m/ingestion.repository.js',
    ]);
    expect(repositoryValueImportsOf("import type { RunRecord } from './ingestion.repository.js';")).toEqual([]);
    expect(repositoryValueImportsOf("import { type A, type B } from './audit.repository.js';")).toEqual([]);
    expect(repositoryValueImportsOf("import { JobStoreError } from './ingestion.repository.js';")).toEqual([]);
    expect(repositoryValueImportsOf("import { JobStoreError, countJobs } from './ingestion.repository.js';")).toEqual([
      './ingestion.repository.js',
    ]);
  });

  // A guard (auth.guards.ts) is a route's first step: it wrote admin.forbidden entries itself.
  it('no route, guard or other file but a service writes the audit log: the service it calls records the entry', () => {
    const offenders = sourceFiles(SRC)
      .filter((file) => !file.endsWith('.service.ts') && !file.endsWith(`${path.sep}audit.repository.ts`))
      .flatMap((file) =>
        auditWriterImportsOf(readFileSync(file, 'utf8')).map((from) => `${path.relative(SRC, file)} -> ${from}`),
      );
    expect(offenders).toEqual([]);
  });

  it('no route builds CSV text itself: it sends what a service streams', () => {
    const offenders = sourceFiles(SRC)
      .filter((file) => file.endsWith('.routes.ts'))
      .flatMap((file) =>
        csvBuilderImportsOf(readFileSync(file, 'utf8')).map((from) => `${path.relative(SRC, file)} -> ${from}`),
      );
    expect(offenders).toEqual([]);
  });

  // docs/development.md, "Architecture": a route calls one service. A handler's branches may each call
  // their own; what is checked is one service call fed by another, the service's steps run by the route.
  it("no route hands one service call's result to another service call", () => {
    const offenders = sourceFiles(SRC)
      .filter((file) => file.endsWith('.routes.ts'))
      .flatMap((file) =>
        chainedServiceCallsOf(readFileSync(file, 'utf8')).map((calls) => `${path.relative(SRC, file)}: ${calls}`),
      );
    expect(offenders).toEqual([]);
  });

  // docs/development.md, "Architecture": services hold the rules. audit.routes refused a From after To itself,
  // so the page and its CSV each ran the rule before calling the service.
  it("no route checks a window's dates itself: the service it calls refuses a From after To", () => {
    const offenders = sourceFiles(SRC)
      .filter((file) => file.endsWith('.routes.ts'))
      .flatMap((file) =>
        windowRuleErrorsOf(readFileSync(file, 'utf8')).map((name) => `${path.relative(SRC, file)} -> ${name}`),
      );
    expect(offenders).toEqual([]);
  });

  it('sees a window rule error imported to throw, and lets a type or another error through', () => {
    expect(windowRuleErrorsOf("import { type AppError, ReversedWindowError } from '../../shared/errors.js';")).toEqual([
      'ReversedWindowError',
    ]);
    expect(windowRuleErrorsOf("import { type ReversedWindowError } from '../../shared/errors.js';")).toEqual([]);
    expect(windowRuleErrorsOf("import { AppError, NotFoundError } from '../../shared/errors.js';")).toEqual([]);
  });

  // The style's "read configuration once, in one module, at start-up": src/config/ reads and checks it.
  it('no file outside src/config/ reads the environment', () => {
    const offenders = sourceFiles(SRC)
      .filter((file) => !file.startsWith(path.join(SRC, 'config') + path.sep))
      .filter((file) => readsEnvironment(readFileSync(file, 'utf8')))
      .map((file) => path.relative(SRC, file));
    expect(offenders).toEqual([]);
  });

  it('sees the environment read through process.env, process["env"] or node:process', () => {
    expect(readsEnvironment('const port = process.env.PORT;')).toBe(true);
    expect(readsEnvironment("const { PORT } = process['env'];")).toBe(true);
    expect(readsEnvironment("import { env } from 'node:process';")).toBe(true);
    expect(readsEnvironment('const port = config.port; process.exitCode = 1;')).toBe(false);
    expect(readsEnvironment("import { argv } from 'node:process';")).toBe(false);
  });

  // Pure cores take plain data and return plain data: table-tested without a database or a clock.
  it('the pure cores import no data, configuration or HTTP layer and read no clock or environment', () => {
    const offenders = PURE_CORES.flatMap((file) =>
      impuritiesOf(readFileSync(path.join(SRC, file), 'utf8')).map((what) => `${file}: ${what}`),
    );
    expect(offenders).toEqual([]);
  });

  it('sees a pure core reaching the database, the configuration or the clock, and lets its own helpers through', () => {
    expect(impuritiesOf("import { findRates } from './rates.repository.js';")).toEqual(['./rates.repository.js']);
    expect(impuritiesOf("import { loadConfig } from '../../config/config.js';")).toEqual(['../../config/config.js']);
    expect(impuritiesOf('const at = new Date();')).toEqual(['new Date()']);
    expect(impuritiesOf("const zone = process.env.TZ ?? 'UTC';")).toEqual(['process.env']);
    expect(impuritiesOf("import type { Logger } from '../../shared/logger.js';")).toEqual([]);
    expect(impuritiesOf("import { truncate } from './slurm-time.parser.js';\nconst end = new Date(text);")).toEqual([]);
  });

  it('no schema imports a repository, not even its types', () => {
    const offenders = sourceFiles(SRC)
      .filter((file) => file.endsWith('.schema.ts'))
      .flatMap((file) =>
        repositoryImportsOf(readFileSync(file, 'utf8')).map((from) => `${path.relative(SRC, file)} -> ${from}`),
      );
    expect(offenders).toEqual([]);
  });

  it('sees an audit writer imported by name or whole, and lets a reader or a type through', () => {
    expect(auditWriterImportsOf("import { recordAudit } from '../audit/audit.service.js';")).toEqual([
      '../audit/audit.service.js',
    ]);
    expect(auditWriterImportsOf("import { appendAudit as append, findAuditPage } from './audit.service.js';")).toEqual([
      './audit.service.js',
    ]);
    expect(auditWriterImportsOf("import * as audit from '../audit/audit.service.js';")).toEqual([
      '../audit/audit.service.js',
    ]);
    expect(auditWriterImportsOf("import { insertEntries } from '../audit/audit.repository.js';")).toEqual([
      '../audit/audit.repository.js',
    ]);
    expect(auditWriterImportsOf("import { findAuditPage, type AuditContext } from './audit.service.js';")).toEqual([]);
    expect(auditWriterImportsOf("import type { AuditFilter } from './audit.repository.js';")).toEqual([]);
  });

  it('sees csv-stringify or the CSV writer imported, and lets their types through', () => {
    expect(csvBuilderImportsOf("import { stringify } from 'csv-stringify/sync';")).toEqual(['csv-stringify/sync']);
    expect(csvBuilderImportsOf("import { stringify } from 'csv-stringify';")).toEqual(['csv-stringify']);
    expect(csvBuilderImportsOf("import { formatCsvLines } from '../../http/csv-format.js';")).toEqual([
      '../../http/csv-format.js',
    ]);
    expect(csvBuilderImportsOf("import type { CsvRecord } from '../../http/csv-format.js';")).toEqual([]);
    expect(csvBuilderImportsOf("import type { CsvExports } from '../../http/csv-exports.js';")).toEqual([]);
  });

  it('sees a service call fed by another, and lets a helper or a branch of its own through', () => {
    const imports = "import { auditFilterOf, auditLogPage, streamAuditCsv } from './audit.service.js';\n";
    expect(
      chainedServiceCallsOf(
        `${imports}const filter = await auditFilterOf(db, query, tz);\nopen: async () => streamAuditCsv(db, filter),`,
      ),
    ).toEqual(['auditFilterOf -> streamAuditCsv']);
    expect(chainedServiceCallsOf('const run = await receipts.findRun(id);\nawait receipts.sendRun(res, run);')).toEqual(
      ['receipts.findRun -> receipts.sendRun'],
    );
    expect(
      chainedServiceCallsOf(`${imports}const page = await auditLogPage(db, q, tz);\nrenderPage(res, page);`),
    ).toEqual([]);
    expect(chainedServiceCallsOf('const list = await receipts.listRuns();\nres.render("runs", list);')).toEqual([]);
    expect(
      chainedServiceCallsOf(`${imports}const page = await auditLogPage(db, q, tz);\nauditLogPage(db, other, tz);`),
    ).toEqual([]);
  });

  it("sees a schema's import of a repository, a type-only one too", () => {
    expect(repositoryImportsOf("import { SORT_COLUMNS, type SortColumn } from './usage.repository.js';")).toEqual([
      './usage.repository.js',
    ]);
    expect(repositoryImportsOf("import type { SortColumn } from './usage.repository.js';")).toEqual([
      './usage.repository.js',
    ]);
    expect(repositoryImportsOf("import { ZPageNumber } from '../../shared/whole-number.js';")).toEqual([]);
  });
});
