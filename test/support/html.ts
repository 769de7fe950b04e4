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

/** The action of every POST form on a page, in page order. */
export function formActionsIn(html: string): string[] {
  return [...html.matchAll(/<form method="post" action="([^"]*)"/g)].map((match) => match[1] as string);
}
