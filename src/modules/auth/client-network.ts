import { isIPv4, isIPv6 } from 'node:net';

/**
 * The network a sign-in budget across usernames is kept for: an IPv4 address as it is (an
 * IPv4-mapped IPv6 address as its IPv4 one), an IPv6 address as its /64 (`2001:db8:0:1::/64`),
 * which is one site or one customer's line: a client given a /64 has 2^64 addresses to
 * rotate through, so counting each on its own would count nothing. Anything else (no address
 * known) is kept as it is.
 */
export function clientNetworkOf(ip: string): string {
  const address = ip.split('%')[0] ?? ip;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped && isIPv4(mapped)) return mapped;
  if (!isIPv6(address)) return ip;
  const groups = expandIPv6(address.toLowerCase());
  if (groups.slice(0, 5).every((group) => group === '0') && groups[5] === 'ffff') {
    // ::ffff:c633:6407, the IPv4-mapped address written in hex.
    const [high = 0, low = 0] = groups.slice(6).map((group) => Number.parseInt(group, 16));
    return [high >> 8, high & 255, low >> 8, low & 255].join('.');
  }
  return `${groups.slice(0, 4).join(':')}::/64`;
}

/** The eight groups of an IPv6 address, without leading zeros ('::' filled in, a dotted tail as two groups). */
function expandIPv6(address: string): string[] {
  const toGroups = (part: string) =>
    part === ''
      ? []
      : part.split(':').flatMap((group) => {
          if (!group.includes('.')) return [group];
          const [a = 0, b = 0, c = 0, d = 0] = group.split('.').map(Number);
          return [((a << 8) | b).toString(16), ((c << 8) | d).toString(16)];
        });
  const [head = '', tail] = address.split('::');
  const headGroups = toGroups(head);
  const tailGroups = tail === undefined ? [] : toGroups(tail);
  const zeros = Array<string>(8 - headGroups.length - tailGroups.length).fill('0');
  return [...headGroups, ...zeros, ...tailGroups].map((group) => Number.parseInt(group, 16).toString(16));
}
