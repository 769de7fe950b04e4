import { describe, expect, it } from 'vitest';
import {
  GENERATED_PASSWORD_ALPHABET,
  GENERATED_PASSWORD_LENGTH,
  generatePassword,
} from '../../src/modules/users/users.service.js';

describe('a generated password', () => {
  const passwords = Array.from({ length: 500 }, generatePassword);

  it('has no characters that read alike (0 O o, 1 l I) and no - or _', () => {
    // 500 passwords of the old 64-character alphabet would hold thousands of them.
    expect(passwords.join('')).toMatch(/^[A-HJ-NP-Za-km-np-z2-9]+$/);
    expect(GENERATED_PASSWORD_ALPHABET).toHaveLength(56);
    expect(new Set(GENERATED_PASSWORD_ALPHABET).size).toBe(56);
  });

  it('carries at least the 96 bits of the 16 base64url characters it replaced', () => {
    expect(passwords.every((password) => password.length === GENERATED_PASSWORD_LENGTH)).toBe(true);
    expect(GENERATED_PASSWORD_LENGTH * Math.log2(GENERATED_PASSWORD_ALPHABET.length)).toBeGreaterThanOrEqual(96);
    // Drawn from the whole alphabet, not a part of it.
    expect(new Set(passwords.join('')).size).toBe(56);
    expect(new Set(passwords).size).toBe(500);
  });
});
