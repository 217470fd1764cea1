// The address a per-client SMTP limit applies to: IPv4 as is (also when mapped
// into IPv6), IPv6 by its /64, so one host cannot dodge the caps by rotating
// through the addresses of its own prefix.

import { expect, it } from 'vitest';
import { clientKey } from '../../../server/smtp/hygiene.ts';

it('keys IPv4 by address and IPv6 by /64', () => {
  expect(clientKey('192.0.2.7')).toBe('192.0.2.7');
  expect(clientKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
  expect(clientKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
  expect(clientKey('2001:DB8:1:2::99')).toBe('2001:db8:1:2::/64');
  expect(clientKey('2001:db8::1')).toBe(clientKey('2001:db8:0:0:ffff::2'));
  expect(clientKey('2001:db8:0:1::1')).not.toBe(clientKey('2001:db8:0:2::1'));
  expect(clientKey('::1')).toBe('0:0:0:0::/64');
});
