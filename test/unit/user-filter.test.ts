import { describe, expect, it } from 'vitest';
import { userFilterMatchOf } from '../../src/shared/user-filter.js';

describe('userFilterMatchOf: what a filter by user means among the names containing its text', () => {
  it.each([
    // Part of a name: every name containing it, in the order given.
    ['ali', ['alice', 'malice'], ['alice', 'malice'], []],
    ['ALI', ['alice', 'malice'], ['alice', 'malice'], []],
    // A whole name, in any case: that name alone, the others offered.
    ['alice', ['alice', 'malice'], ['alice'], ['malice']],
    ['Alice', ['alice', 'malice'], ['alice'], ['malice']],
    ['bob', ['bob'], ['bob'], []],
    // Actors written in two cases (what was typed at failed sign-ins) are both the whole name.
    ['bob', ['Bob', 'bob', 'bobby'], ['Bob', 'bob'], ['bobby']],
    // The audit log's own actors are names like any other.
    ['cli', ['cli', 'clive'], ['cli'], ['clive']],
    ['sys', ['system'], ['system'], []],
    // Nothing contains it.
    ['zed', [], [], []],
  ])('%s among %j lists %j and offers %j', (search, containing, usernames, alsoContaining) => {
    expect(userFilterMatchOf(search, containing)).toEqual({ usernames, alsoContaining });
  });

  it('does not change the list it is given', () => {
    const containing = Object.freeze(['alice', 'malice']);
    userFilterMatchOf('alice', containing);
    expect(containing).toEqual(['alice', 'malice']);
  });
});
