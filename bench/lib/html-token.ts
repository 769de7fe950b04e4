/** The CSRF token of the first form on a page: `<input type="hidden" name="csrf_token" value="...">`. */
export function readCsrfToken(html: string): string | undefined {
  const input = /<input\b[^>]*\bname="csrf_token"[^>]*>/i.exec(html)?.[0];
  if (!input) return undefined;
  return /\bvalue="([^"]*)"/i.exec(input)?.[1];
}
