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
 * The distinct values of `column` in `table` that contain `search` in any case, as `name`, in
 * order: a loose index scan of an index that `column` leads (one probe per distinct value, not a
 * read of every row), each value then tested. The admin pages' filters by user read the names so
 * (receipts' usernames, job owners, audit actors), then their rows with `column = ANY (names)`
 * through the same index. `table` and `column` are the code's own identifiers, never input.
 */
export function namesContainingSql(table: string, column: string, search: string): Prisma.Sql {
  const [t, c] = [Prisma.raw(table), Prisma.raw(column)];
  return Prisma.sql`
    WITH RECURSIVE names AS (
      (SELECT ${c} AS name FROM ${t} ORDER BY ${c} LIMIT 1)
      UNION ALL
      SELECT (SELECT n.${c} FROM ${t} n WHERE n.${c} > names.name ORDER BY n.${c} LIMIT 1)
        FROM names
       WHERE names.name IS NOT NULL
    )
    SELECT name FROM names
     WHERE name ILIKE ${usernameContainingPattern(search)}
     ORDER BY name`;
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
