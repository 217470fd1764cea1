import { describe, expect, it } from 'vitest';
import { createTokens } from '../../../server/delivery/tokens.ts';
import { listHeaders, listIdOf } from '../../../server/delivery/headers.ts';

describe('VERP and list headers', () => {
  const t = createTokens('a-test-secret-of-some-length');
  it('a bounce address names its delivery and cannot be forged', () => {
    const a = t.bounceAddress('news@lists.test', 42);
    expect(a).toMatch(/^news\+bounces-42-[0-9a-f]{16}@lists\.test$/);
    expect(t.parseBounceAddress('news@lists.test', a)).toBe(42);
    expect(t.parseBounceAddress('news@lists.test', a.replace('-42-', '-43-'))).toBeNull();
    expect(t.parseBounceAddress('other@lists.test', a)).toBeNull();
    expect(t.parseBounceAddress('news@lists.test', 'news+bounces-42-zz@lists.test')).toBeNull();
  });
  it('writes RFC 2919, 2369 and 8058 headers', () => {
    const h = Object.fromEntries(listHeaders({ listAddress: 'news@lists.test', publicUrl: 'https://l.test/', unsubscribeUrl: 'https://l.test/u?x' }));
    expect(listIdOf('news@lists.test')).toBe('<news.lists.test>');
    expect(h['List-Id']).toBe('<news.lists.test>');
    expect(h['List-Post']).toBe('<mailto:news@lists.test>');
    expect(h['List-Unsubscribe']).toBe('<https://l.test/u?x>');
    expect(h['List-Unsubscribe-Post']).toBe('List-Unsubscribe=One-Click');
    expect(h['List-Archive']).toBe('<https://l.test/lists/news%40lists.test/archive>');
  });
});
