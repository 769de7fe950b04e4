import { PrismaPg } from '@prisma/adapter-pg';
import { defineConfig } from 'prisma/config';

// Prisma's native engines cannot be downloaded everywhere (firewalls, offline
// machines), so migrations run through the WebAssembly schema engine and pg.
const connectionString = process.env.DATABASE_URL;
// The CLI needs the schema's env("DATABASE_URL") to resolve even for
// `prisma generate`, which never connects; otherwise it falls back to
// downloading a native engine.
if (!connectionString) process.env.DATABASE_URL = 'postgresql://unset@localhost/unset';

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  experimental: { adapter: true },
  engine: 'js',
  // `migrate diff` connects through this adapter too (it reads nothing), so it
  // needs a reachable DATABASE_URL (docs/development.md); applying migrations
  // goes through src/cli/migrate.cli.ts, which requires the URL.
  // Without it, it used to try the placeholder above and fail with "User was denied access on the
  // database `(not available)`", naming neither the setting nor the fix.
  adapter: async () => {
    if (!connectionString) {
      throw new Error(
        'This prisma command needs DATABASE_URL: it connects to a PostgreSQL, even migrate diff comparing ' +
          "two schema files (it reads nothing). Set it to one you can sign in to: the line npm start's banner prints " +
          'for another shell, while the demo runs (docs/development.md, "Database and migrations").',
      );
    }
    return new PrismaPg({ connectionString });
  },
});
