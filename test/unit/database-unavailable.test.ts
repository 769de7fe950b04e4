import { describe, expect, it } from 'vitest';
import { DatabaseTimeoutError, isDatabaseUnavailable, isPoolWaitTimedOut } from '../../src/shared/errors.js';

const prismaError = (code: string, extra: object = {}) => ({ code, clientVersion: '6.19.3', ...extra });

describe('isDatabaseUnavailable', () => {
  it.each([
    [
      'a refused connection (pg)',
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
    ],
    ['a connection cut mid-query (pg)', new Error('Connection terminated unexpectedly')],
    ['the pool waiting too long for a connection (pg)', new Error('timeout exceeded when trying to connect')],
    // pg.Client's own connectionTimeoutMillis (a host that accepts and never answers, or drops the
    // handshake): the start's wait for the database took it for a fault of another kind.
    ['a connection that did not open within its timeout (pg.Client)', new Error('timeout expired')],
    ['PostgreSQL shutting down (57P01)', { code: '57P01', severity: 'FATAL' }],
    ['PostgreSQL starting up (57P03)', { code: '57P03', severity: 'FATAL' }],
    ['too many connections (53300)', { code: '53300', severity: 'FATAL' }],
    ['a connection exception (08006)', { code: '08006' }],
    ['a database that does not exist (3D000)', { code: '3D000', severity: 'FATAL' }],
    ['a role that does not exist (28000)', { code: '28000', severity: 'FATAL' }],
    ['a wrong password (28P01)', { code: '28P01', severity: 'FATAL' }],
    ["Prisma's cannot reach (P1001)", prismaError('P1001')],
    ["Prisma's pool timeout (P2024)", prismaError('P2024')],
    [
      "the pg adapter's closed connection under Prisma",
      prismaError('P2010', { meta: { driverAdapterError: { cause: { kind: 'ConnectionClosed' } } } }),
    ],
    ['a refused connection as the cause', { message: 'query failed', cause: { code: 'ECONNRESET' } }],
    ['no answer within the query timeout', new DatabaseTimeoutError(30_000)],
    [
      'no answer within the query timeout, as the cause',
      { message: 'query failed', cause: new DatabaseTimeoutError(300) },
    ],
  ])('is true for %s', (_case, error) => {
    expect(isDatabaseUnavailable(error)).toBe(true);
  });

  it.each([
    ['a unique violation', { code: '23505' }],
    ["Prisma's unique violation", prismaError('P2002')],
    ['a syntax error', { code: '42601' }],
    ['a plain error', new Error('boom')],
    ['a Prisma error whose code looks like a SQLSTATE class 08 by accident', prismaError('P0800')],
    ['nothing', undefined],
  ])('is false for %s', (_case, error) => {
    expect(isDatabaseUnavailable(error)).toBe(false);
  });
});

describe('isPoolWaitTimedOut', () => {
  it.each([
    [
      "pg-pool's wait for a free connection, as the pg adapter passes it on",
      new Error('timeout exceeded when trying to connect'),
    ],
    ["Prisma's pool timeout (P2024)", prismaError('P2024')],
    [
      'the pool timeout as the cause',
      { message: 'query failed', cause: new Error('timeout exceeded when trying to connect') },
    ],
  ])('is true for %s', (_case, error) => {
    expect(isPoolWaitTimedOut(error)).toBe(true);
    expect(isDatabaseUnavailable(error)).toBe(true);
  });

  it.each([
    // Opening a connection took too long: the database host, not a busy pool.
    [
      'a new connection that did not open in time (pg-pool)',
      new Error('Connection terminated due to connection timeout'),
    ],
    ['a connection that did not open within its timeout (pg.Client)', new Error('timeout expired')],
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })],
    ['too many connections (53300)', { code: '53300', severity: 'FATAL' }],
    ['a plain error', new Error('boom')],
    ['nothing', undefined],
  ])('is false for %s', (_case, error) => {
    expect(isPoolWaitTimedOut(error)).toBe(false);
  });
});
