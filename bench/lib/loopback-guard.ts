import net from 'node:net';

export class NotLoopbackError extends Error {
  constructor(url: string, reason: string) {
    super(
      `refusing to load-test ${url}: ${reason}. The harness only targets this machine ` +
        "(127.0.0.0/8, localhost or ::1) so it can never be pointed at someone else's server.",
    );
    this.name = 'NotLoopbackError';
  }
}

/** True for localhost, any 127.0.0.0/8 address and ::1 (also IPv4-mapped 127.x). */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost') return true;
  if (net.isIPv4(host)) return host.startsWith('127.');
  if (net.isIPv6(host)) {
    if (host === '::1' || host === '0:0:0:0:0:0:0:1') return true;
    // IPv4-mapped 127.x.x.x, dotted or as the URL parser normalizes it (::ffff:7f00:1).
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(host);
    if (mapped) return Boolean(mapped[1]?.startsWith('127.'));
    return /^::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}$/.test(host);
  }
  return false;
}

/** Parses a base URL and throws NotLoopbackError unless it is http(s) to loopback. */
export function assertLoopbackUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new NotLoopbackError(text, 'not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new NotLoopbackError(text, 'not http or https');
  if (!isLoopbackHost(url.hostname)) throw new NotLoopbackError(text, `${url.hostname} is not a loopback address`);
  return url;
}
