/**
 * The smallest cookie jar a virtual user needs: one origin, name -> value. It ignores
 * Secure, Domain and Path on purpose: the app in production marks its session cookie
 * (`__Host-hb.sid`) Secure while the harness talks plain HTTP to loopback, and a browser
 * behind the TLS proxy would send it.
 */
export class CookieJar {
  private readonly cookies = new Map<string, string>();

  /** Takes the Set-Cookie header(s) of a response; an expired cookie is removed. */
  storeFrom(setCookie: string | string[] | undefined, now: Date = new Date()): void {
    if (setCookie === undefined) return;
    for (const line of Array.isArray(setCookie) ? setCookie : [setCookie]) this.storeOne(line, now);
  }

  get(name: string): string | undefined {
    return this.cookies.get(name);
  }

  /** The Cookie request header, or undefined when the jar is empty. */
  header(): string | undefined {
    if (this.cookies.size === 0) return undefined;
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  clear(): void {
    this.cookies.clear();
  }

  private storeOne(line: string, now: Date) {
    const [pair, ...attributes] = line.split(';');
    const separator = pair?.indexOf('=') ?? -1;
    if (!pair || separator <= 0) return;
    const name = pair.slice(0, separator).trim();
    const value = pair.slice(separator + 1).trim();
    let isExpired = false;
    for (const attribute of attributes) {
      const [key = '', raw = ''] = attribute.split('=', 2).map((part) => part.trim());
      const lower = key.toLowerCase();
      if (lower === 'max-age' && Number(raw) <= 0) isExpired = true;
      if (lower === 'expires') {
        const expires = Date.parse(raw);
        if (!Number.isNaN(expires) && expires <= now.getTime()) isExpired = true;
      }
    }
    if (isExpired) this.cookies.delete(name);
    else this.cookies.set(name, value);
  }
}
