import { describe, expect, it } from 'vitest';
import { clientNetworkOf } from '../../src/modules/auth/client-network.js';

describe('the network a sign-in budget across usernames is kept for', () => {
  it('is an IPv4 address itself, mapped into IPv6 or not', () => {
    expect(clientNetworkOf('198.51.100.7')).toBe('198.51.100.7');
    expect(clientNetworkOf('::ffff:198.51.100.7')).toBe('198.51.100.7');
    expect(clientNetworkOf('::FFFF:198.51.100.7')).toBe('198.51.100.7');
    expect(clientNetworkOf('::ffff:c633:6407')).toBe('198.51.100.7');
  });

  it('is the /64 of an IPv6 address, however it is written', () => {
    const network = '2001:db8:0:1::/64';
    for (const ip of [
      '2001:db8:0:1::1',
      '2001:0DB8:0000:0001:ffff:ffff:ffff:ffff',
      '2001:db8::1:0:0:0:5',
      '2001:db8:0:1:1:2:3:4%eth0',
      '2001:db8:0:1::192.0.2.1',
    ]) {
      expect(clientNetworkOf(ip), ip).toBe(network);
    }
    expect(clientNetworkOf('2001:db8:0:2::1')).toBe('2001:db8:0:2::/64');
    expect(clientNetworkOf('::1')).toBe('0:0:0:0::/64');
    expect(clientNetworkOf('fe80::1')).toBe('fe80:0:0:0::/64');
  });

  it('keeps anything that is not an address as it is', () => {
    expect(clientNetworkOf('unknown')).toBe('unknown');
    expect(clientNetworkOf('*')).toBe('*');
  });
});
