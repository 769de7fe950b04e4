import { Prisma } from '@prisma/client';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { expect } from 'vitest';
import { escapeCsvText, formatCsvLines } from '../../src/http/csv-format.js';
import { csvTextSql } from '../../src/modules/usage/usage.repository.js';

/**
 * What PostgreSQL's CSV `COPY` writes of `sqlOf(t.<column>)` for each of `texts` (NULL for null), in
 * their order: how the usage CSVs' SQL escaping is compared with Node's.
 */
export async function copyCsvOf(
  pool: pg.Pool,
  sqlOf: (column: Prisma.Sql) => Prisma.Sql,
  texts: readonly (string | null)[],
  column = 'text',
): Promise<string> {
  const client = await pool.connect();
  try {
    const rows = texts.map((text, index) => `(${index}, ${text === null ? 'NULL::text' : client.escapeLiteral(text)})`);
    const copy = `COPY (SELECT ${sqlOf(Prisma.raw(`t.${column}`)).text} FROM (VALUES ${rows.join(', ')}) t(n, ${column})
      ORDER BY t.n) TO STDOUT WITH (FORMAT csv)`;
    const parts: Buffer[] = [];
    for await (const chunk of client.query(copyTo(copy))) parts.push(chunk as Buffer);
    return Buffer.concat(parts).toString('utf8');
  } finally {
    client.release();
  }
}

/**
 * What csvTextSql writes of `texts`, checked against escapeCsvText in Node text by text (a text with
 * a line break spans two lines); the whole output.
 */
export async function expectCsvTextSqlAsNode(pool: pg.Pool, texts: readonly string[]): Promise<string> {
  const written = await copyCsvOf(pool, csvTextSql, texts);
  let rest = written;
  for (const text of texts) {
    const line = formatCsvLines([[escapeCsvText(text)]], ['text']);
    expect(rest.slice(0, line.length), JSON.stringify(text)).toBe(line);
    rest = rest.slice(line.length);
  }
  expect(rest).toBe('');
  return written;
}
