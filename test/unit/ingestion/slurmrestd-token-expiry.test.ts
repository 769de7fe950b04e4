import { describe, expect, it } from 'vitest';
import { tokenExpiryOf } from '../../../src/modules/ingestion/slurm-rest.source.js';

const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
/** A token as `scontrol token` issues it (HS256, claims exp, iat and sun); the signature is not checked. */
const jwt = (claims: Record<string, unknown>) => `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}.c2lnbmF0dXJl`;

describe('tokenExpiryOf (slurm_ingest_token_expiry_timestamp_seconds)', () => {
  it("reads a JWT's exp claim, unverified, as the time it expires", () => {
    const exp = Date.parse('2027-03-01T10:00:00Z') / 1000;
    expect(tokenExpiryOf(jwt({ exp, iat: exp - 7_776_000, sun: 'billing' }))).toEqual(new Date(exp * 1000));
    // A signature slurmrestd would refuse does not matter: the claim is only read.
    expect(tokenExpiryOf(`${jwt({ exp }).split('.').slice(0, 2).join('.')}.forged`)).toEqual(new Date(exp * 1000));
  });

  it.each([
    ['a token that is no JWT', 'rotated.token'],
    ['one part alone', 'abcdef'],
    ['a payload that is not JSON', `${part({ alg: 'HS256' })}.bm90IGpzb24.sig`],
    ['a JWT without exp', jwt({ sun: 'billing' })],
    ['an exp that is no number', jwt({ exp: '1803888000' })],
    ['an exp that is not finite or not positive', jwt({ exp: -5 })],
    // A number past the dates JavaScript holds (the year 275760): exported, the series read NaN ("Nan").
    ['an exp past any date', jwt({ exp: 1e300 })],
    ['an exp one second past the last date', jwt({ exp: 8.64e12 + 1 })],
    ['a payload that is an array', `${part({ alg: 'HS256' })}.${part([1, 2])}.sig`],
  ])('gives null (no series) for %s', (_, token) => {
    expect(tokenExpiryOf(token)).toBeNull();
  });
});
