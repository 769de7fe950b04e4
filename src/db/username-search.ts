import { Prisma } from '@prisma/client';

/** `text` matched literally by LIKE: its % and _ (a username's _ is common) and the escape itself. */
function likeLiteral(text: string): string {
  return text.replace(/[\\%_]/g, (character) => `\\${character}`);
}

/** The ILIKE pattern of a username containing `search` in any case, its % and _ plain characters. */
export function usernameContainingPattern(search: string): string {
  return `%${likeLiteral(search)}%`;
}

/**
 * The WHERE clause and the first ORDER BY key of a list of usernames (a `username` column)
 * searched for `search`: names containing it in any case, everyone without one; the exact name
 * sorts first, so a search for a whole name lists it at the top however many longer names
 * contain it. Both are empty without a search. /admin/users and /admin/tiers search alike.
 */
export function usernameSearchOf(search: string | undefined): { where: Prisma.Sql; exactFirst: Prisma.Sql } {
  if (!search) return { where: Prisma.empty, exactFirst: Prisma.empty };
  return {
    where: Prisma.sql`WHERE username ILIKE ${usernameContainingPattern(search)}`,
    exactFirst: Prisma.sql`lower(username) = ${search.toLowerCase()} DESC,`,
  };
}
