// server/mailman/routing.ts without Postfix: what it refuses to write into a map
// (the real postmap and Postfix lookups are test/integration/mailman/routing.test.ts).

import { describe, expect, it } from 'vitest';
import { checkRoutes, nexthop, parseHostPort, routesFor, RoutingError, splitListAddress, splitTables, transportMap } from '../../../server/mailman/routing.ts';

const T = { letterlock: 'smtp:[127.0.0.1]:2525', mailman: 'lmtp:[127.0.0.1]:8024' };

describe('mailman routing map', () => {
  it('refuses addresses that would break the table or never be looked up', () => {
    for (const bad of ['news+x@lists.example.org', 'news@lists.example.org\nevil@x smtp:[6.6.6.6]:25', 'news lists@example.org',
      'news@localhost', '@lists.example.org', 'news@', 'a'.repeat(65) + '@lists.example.org', '#news@lists.example.org', 'news@-bad.example.org']) {
      expect(() => splitListAddress(bad), bad).toThrow(RoutingError);
    }
    expect(splitListAddress(' News@Lists.Example.ORG ')).toEqual(['news', 'lists.example.org']);
  });

  it('writes nexthops Postfix accepts and refuses the rest', () => {
    expect(nexthop('smtp', '127.0.0.1', 2525)).toBe('smtp:[127.0.0.1]:2525');
    expect(nexthop('lmtp', 'Mailman.Internal', 8024)).toBe('lmtp:[mailman.internal]:8024');
    for (const [h, p] of [['::1', 25], ['127.0.0.1', 0], ['127.0.0.1', 70000], ['bad host', 25], ['x]:25 smtp:[y', 25]] as const) {
      expect(() => nexthop('smtp', h, p), `${h}:${p}`).toThrow(RoutingError);
    }
    expect(parseHostPort('[127.0.0.1]:8024', 'x')).toEqual({ host: '127.0.0.1', port: 8024 });
    expect(parseHostPort('mm.local:8024', 'x')).toEqual({ host: 'mm.local', port: 8024 });
    expect(() => parseHostPort('mm.local', 'x')).toThrow(RoutingError);
  });

  it('one block per list, sorted, no duplicate keys, comments on lines of their own', () => {
    const map = transportMap(['b@z.example', 'news@a.example', 'a@z.example', 'NEWS@a.example'], T);
    const keys = map.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(/\s+/)[0]);
    expect(keys.length).toBe(27);
    expect(keys.filter((k) => !k!.includes('-'))).toEqual(['news@a.example', 'a@z.example', 'b@z.example']);
    expect(new Set(keys).size).toBe(keys.length);
    expect(routesFor('news@a.example', T).find((r) => r.address === 'news-request@a.example')?.transport).toBe(T.letterlock);
    // A list named like another's sub-address would give one key two meanings.
    expect(() => transportMap(['news@a.example', 'news-owner@a.example'], T)).toThrow(/both/);
  });
});

describe('checking routes', () => {
  it('splits Postfix table lists at commas and blanks outside braces', () => {
    expect(splitTables('hash:/a/b, hash:/c\n  inline:{ x.test=smtp:[1.2.3.4]:25, y.test=lmtp:[1.2.3.4]:24 }'))
      .toEqual(['hash:/a/b', 'hash:/c', 'inline:{ x.test=smtp:[1.2.3.4]:25, y.test=lmtp:[1.2.3.4]:24 }']);
  });

  it('marks each address whose lookup differs, including one no table names', () => {
    const routes = routesFor('news@a.example', T);
    const answers = new Map(routes.map((r) => [r.address, r.transport]));
    answers.set('news@a.example', T.mailman);
    answers.delete('news-owner@a.example');
    const checked = checkRoutes(routes, () => answers);
    expect(checked.filter((c) => !c.ok).map((c) => [c.address, c.got])).toEqual([['news@a.example', T.mailman], ['news-owner@a.example', null]]);
  });
});
