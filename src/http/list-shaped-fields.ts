import querystring from 'node:querystring';

/**
 * The field a key names when it writes the field as a list or an object (`start[]`, `start[0]`,
 * `page[a]`: PHP's, Rails's and qs's way), or undefined for a plain key. The query and form parsers
 * are the simple ones (node:querystring), which read `start[]` as a key of its own.
 */
export function fieldOfListShapedKey(key: string): string | undefined {
  const bracket = key.indexOf('[');
  return bracket > 0 ? key.slice(0, bracket) : undefined;
}

/**
 * `fields` with each list-shaped key whose field `isField` accepts folded into that field as a
 * list of its values (a plain value of the same field first): `start[]=a` reads as `start` given
 * as a list, which every route refuses as it refuses `start=a&start=b` ("must be given once"). A key
 * whose field `isField` does not accept is left as it is. Returns `fields` itself when nothing folds.
 */
export function foldListShapedKeys<T extends Record<string, unknown>>(
  fields: T,
  isField: (name: string) => boolean = () => true,
): T {
  let folded: Record<string, unknown> | undefined;
  for (const [key, value] of Object.entries(fields)) {
    const field = fieldOfListShapedKey(key);
    if (field === undefined || !isField(field)) continue;
    // Null prototype, as querystring.parse answers: a key named __proto__ stays a key.
    const into: Record<string, unknown> = folded ?? Object.assign(Object.create(null), fields);
    delete into[key];
    into[field] = [...listOf(into[field]), ...listOf(value)];
    folded = into;
  }
  return (folded ?? fields) as T;
}

function listOf(value: unknown): unknown[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/**
 * The app's query parser: Express's "simple" one (node:querystring), with list-shaped keys folded
 * into their fields, so that whatever reads req.query (a refused page re-showing what was typed, the
 * links it offers) sees `?start[]=a` as `start` given as a list, as parseInput refuses it. It used
 * to see no `start` at all: a refused /me offered the CSV of the default window. Every field is read
 * (maxKeys 0): by default node:querystring stops at 1,000 and drops the rest unread, so a field after
 * 1,000 others was ignored rather than used or refused. Node's header size limit (16 KB for the
 * address and cookies together) bounds how many there can be.
 */
export function parseQueryFields(text: string): Record<string, unknown> {
  return foldListShapedKeys(querystring.parse(text, undefined, undefined, { maxKeys: 0 }) as Record<string, unknown>);
}
