const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The element of a page with this id, from its opening tag to the tag that closes it (same-name
 * tags inside are counted), or undefined when the page has none: what a `#id` link opens at.
 */
export function elementById(html: string, id: string): string | undefined {
  const opening = new RegExp(`<([a-z][a-z0-9]*)\\s(?:[^>]*\\s)?id="${escapeRegExp(id)}"[^>]*>`, 'i').exec(html);
  const tag = opening?.[1];
  if (!opening || !tag) return undefined;
  const tags = new RegExp(`<(/?)${tag}\\b[^>]*>`, 'gi');
  tags.lastIndex = opening.index;
  let depth = 0;
  let match = tags.exec(html);
  while (match) {
    depth += match[1] ? -1 : 1;
    if (depth === 0) return html.slice(opening.index, match.index + match[0].length);
    match = tags.exec(html);
  }
  return undefined;
}

/** The hidden fields (name to value) of a piece of a page, such as one form or one card: what a stale tab sends back. */
export function hiddenFieldsIn(html: string): Record<string, string> {
  return Object.fromEntries(
    [...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [
      m[1] as string,
      m[2] as string,
    ]),
  );
}

/**
 * The first POST form of `html` whose action is `action` (with `isActionPrefix`, begins with it), from its opening
 * tag to its closing one, or undefined when the page has none: the form a stale tab holds.
 */
export function postFormIn(html: string, action: string, isActionPrefix = false): string | undefined {
  const actionPattern = `${escapeRegExp(action)}${isActionPrefix ? '[^"]*' : ''}`;
  return new RegExp(`<form method="post" action="${actionPattern}".*?</form>`, 's').exec(html)?.[0];
}

/** The action of every POST form on a page, in page order. */
export function formActionsIn(html: string): string[] {
  return [...html.matchAll(/<form method="post" action="([^"]*)"/g)].map((match) => match[1] as string);
}

// Elements a browser lays out inside a line of text: no space where they open or close.
const INLINE_TAG = /<\/?(?:a|abbr|b|code|em|i|small|span|strong|time)\b[^>]*>/gi;

/**
 * A page's text as a browser shows it, whitespace collapsed: inline tags vanish without a space
 * ("<a>billing page</a>)" reads "billing page)"), any other tag separates words. Replacing every
 * tag with a space instead puts spaces before punctuation that no reader sees.
 */
export function visibleTextOf(html: string): string {
  return html
    .replace(/<(script|style)\b[\s\S]*?<\/\1>/gi, ' ')
    .replace(INLINE_TAG, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&#39;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ')
    .trim();
}

/** A refused form's state as a screen reader and the keyboard meet it. */
export interface RefusedFormState {
  /** The ids of the fields marked aria-invalid="true", in page order. */
  invalid: string[];
  /** The id each of those fields is described by (aria-describedby), by field id. */
  describedBy: Record<string, string | undefined>;
  /** The ids of the elements marked autofocus, in page order: a browser focuses the first. */
  autofocus: string[];
}

const attributeOf = (tag: string, name: string) =>
  new RegExp(`\\s${escapeRegExp(name)}(?:="([^"]*)")?(?=[\\s>/])`).exec(tag);

/** Which fields of `html` are marked invalid, what describes them, and what has the focus on load. */
export function refusedFormStateOf(html: string): RefusedFormState {
  const state: RefusedFormState = { invalid: [], describedBy: {}, autofocus: [] };
  for (const [tag] of html.matchAll(/<(?:input|select|textarea|div|button)\b[^>]*>/gi)) {
    const id = attributeOf(tag, 'id')?.[1] ?? '';
    if (attributeOf(tag, 'aria-invalid')?.[1] === 'true') {
      state.invalid.push(id);
      state.describedBy[id] = attributeOf(tag, 'aria-describedby')?.[1];
    }
    if (attributeOf(tag, 'autofocus')) state.autofocus.push(id);
  }
  return state;
}

/** The text of every table cell of a page with this data-label (the name a phone's card shows), in page order. */
export function cellsLabelled(html: string, label: string): string[] {
  return [...html.matchAll(new RegExp(`data-label="${escapeRegExp(label)}"[^>]*>([^<]*)<`, 'g'))].map(
    (match) => match[1] as string,
  );
}

/** The text of the page's flash (a success or warning shown once after a redirect), if it has one. */
export function flashMessageOf(html: string): string | undefined {
  return /<div class="alert (?:success|warning)" role="status">([^<]*)<\/div>/.exec(html)?.[1];
}
