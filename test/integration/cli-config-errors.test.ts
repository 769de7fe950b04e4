import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { builtFile } from '../support/built-app.js';
import { runToExit } from '../support/run-to-exit.js';
import { PROJECT_ROOT } from '../support/spawn-server.js';

// Arguments that get each tool past its own usage checks, so the configuration is what it reads next.
const VALID_ARGUMENTS: Record<string, string[]> = {
  'audit-verify.cli.ts': [],
  'ingest.cli.ts': ['--from', '2026-01-01', '--to', '2026-01-02'],
  'migrate.cli.ts': [],
  'seed.cli.ts': [],
  'user.cli.ts': ['create', '--username', 'ops', '--password-stdin'],
};

// Each tool compiled once for the run (test/support/built-app.ts): these are the tools' words and exit
// codes, the same from the build; that `npm run <tool>` runs from source through tsx is tested beside each
// tool (user-cli, ingest-cli, migrate-cli, seed-cli, audit-verify-cli) and in tsx-missing.
const compiled = (tool: string) => builtFile(`src/cli/${tool}`);

const tools = readdirSync(path.join(PROJECT_ROOT, 'src/cli')).filter((file) => file.endsWith('.cli.ts'));

/** The server's words and exit code for the same settings: the README promises 78 for all of them. */
const BAD_SETTINGS = { DB_POOL_MAX: 'abc', SESSION_SECRET: 'x', DATABASE_URL: 'postgresql://127.0.0.1:1/none' };
const PROBLEM_LIST = [
  'Invalid configuration:',
  '  - DB_POOL_MAX: must be a whole number from 1 to 200, in plain digits (got "abc")',
  '  - SESSION_SECRET: must be at least 32 characters (make one with openssl rand -hex 32)',
  '',
].join('\n');

describe('every command-line tool, given a bad setting', () => {
  it('has its arguments here', () => {
    expect(tools.sort()).toEqual(Object.keys(VALID_ARGUMENTS).sort());
  });

  it.each(tools)('%s exits 78 (EX_CONFIG) with the list of every problem, as the server does', async (tool) => {
    const result = await runToExit(process.execPath, [compiled(tool), ...(VALID_ARGUMENTS[tool] ?? [])], {
      cwd: PROJECT_ROOT,
      env: BAD_SETTINGS,
    });
    expect(result).toEqual({ code: 78, output: PROBLEM_LIST });
  });

  // A newcomer who runs a tool beside the demo is told where the demo's DATABASE_URL is: it said only
  // that one is required, and the embedded database's port can change from one start to the next.
  const DEMO_HINT =
    "; for the demo that npm start runs, paste the export line its start-up banner prints 'for npm run ingest / user:* / audit:verify / db:* in another shell' (the embedded PostgreSQL's port can change from one start to the next)";

  it.each([
    ['audit-verify.cli.ts', `DATABASE_URL: is required to verify the audit log${DEMO_HINT}`],
    ['ingest.cli.ts', `DATABASE_URL: is required to ingest${DEMO_HINT}`],
    ['migrate.cli.ts', `DATABASE_URL: is required to run migrations${DEMO_HINT}`],
    ['seed.cli.ts', `DATABASE_URL: is required to seed${DEMO_HINT}`],
    ['user.cli.ts', `DATABASE_URL: is required (the user tools work on a configured database)${DEMO_HINT}`],
  ])('%s exits 78 without the DATABASE_URL it needs, saying where the demo prints its own', async (tool, problem) => {
    const result = await runToExit(process.execPath, [compiled(tool), ...(VALID_ARGUMENTS[tool] ?? [])], {
      cwd: PROJECT_ROOT,
      env: {},
    });
    expect(result).toEqual({ code: 78, output: `Invalid configuration:\n  - ${problem}\n` });
  });
});

describe('every command-line tool, given a database it cannot reach', () => {
  // Nothing listens on port 1: the connection is refused at once.
  const UNREACHABLE = { DATABASE_URL: 'postgresql://postgres:not-shown@127.0.0.1:1/billing' };
  const REACHING_THE_DATABASE: Record<string, string[]> = {
    ...VALID_ARGUMENTS,
    // create would first wait for a password on stdin; disable goes straight to the database.
    'user.cli.ts': ['disable', '--username', 'ops'],
  };

  it.each(tools)('%s says in one line that the database cannot be reached, and where', async (tool) => {
    const result = await runToExit(process.execPath, [compiled(tool), ...(REACHING_THE_DATABASE[tool] ?? [])], {
      cwd: PROJECT_ROOT,
      env: UNREACHABLE,
    });
    expect(result.code).toBe(1);
    // Not Prisma's call site and code frame ("Invalid `db.user.findUnique()` invocation in
    // /app/src/...: 36:18", numbered source lines): the operator gets the reason alone.
    const lines = result.output.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^The database cannot be reached \(DATABASE_URL\): .*127\.0\.0\.1:1\b/);
    expect(result.output).not.toContain('not-shown');
  });
});

describe("every command-line tool, given the demo's DATABASE_URL from an earlier start", () => {
  // The banner's line pasted before the demo was restarted: its embedded PostgreSQL listens on a new
  // port now, and the tools said only that the database could not be reached.
  const STALE_DEMO_URL = { DATABASE_URL: 'postgresql://postgres:embedded-postgres@127.0.0.1:1/hpc_billing' };
  const REACHING_THE_DATABASE: Record<string, string[]> = {
    ...VALID_ARGUMENTS,
    'user.cli.ts': ['disable', '--username', 'ops'],
  };

  it.each(tools)('%s says, on the same line, to paste the running demo banner line again', async (tool) => {
    const result = await runToExit(process.execPath, [compiled(tool), ...(REACHING_THE_DATABASE[tool] ?? [])], {
      cwd: PROJECT_ROOT,
      env: STALE_DEMO_URL,
    });
    expect(result.code).toBe(1);
    const lines = result.output.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^The database cannot be reached \(DATABASE_URL\): .*127\.0\.0\.1:1\b/);
    expect(lines[0]).toContain(
      "; this is the URL of the demo's embedded PostgreSQL, whose port can change from one start of the app to the next: " +
        "while it runs, paste the export line its start-up banner prints 'for npm run ingest / user:* / audit:verify / db:* in another shell' again",
    );
  });

  it('a database of its own on that port is not taken for the demo', async () => {
    const result = await runToExit(process.execPath, [compiled('migrate.cli.ts')], {
      cwd: PROJECT_ROOT,
      env: { DATABASE_URL: 'postgresql://billing:secret@127.0.0.1:1/hpc_billing' },
    });
    expect(result.code).toBe(1);
    expect(result.output).not.toContain('demo');
  });
});
