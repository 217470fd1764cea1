// Words the pages show for states and errors (extension/pages/ui/words.ts).

import { describe, expect, it, vi } from 'vitest';

// words.ts reaches BusError through ask.ts, which loads the polyfill (it refuses to load outside an extension).
vi.mock('webextension-polyfill', () => ({ default: {} }));
const { BusError } = await import('../../extension/ask.ts');
const { explain, moderatorSignInWords } = await import('../../extension/pages/ui/words.ts');

describe('moderatorSignInWords', () => {
  it('a refused moderator sign-in says first that only owners and moderators see held posts, not that the key is broken', () => {
    const refused = new BusError('SIGNATURE_INVALID', 'The log-in signature is not valid for a moderator of this list.');
    const words = moderatorSignInWords(refused, 'demo@lists.localhost');
    expect(words).toContain('could not sign you in as a moderator of demo@lists.localhost');
    expect(words).toContain('Only the list owner and its moderators see held posts');
    expect(words).not.toMatch(/changed or expired/);
    // Elsewhere the same code keeps its general advice.
    expect(explain(refused)).toMatch(/changed or expired/);
  });

  it('other failures keep their own words', () => {
    const down = new BusError('SERVER_UNREACHABLE', 'The list server could not be reached. Check its address and your connection.');
    expect(moderatorSignInWords(down, 'x@lists.example.org')).toBe(explain(down));
  });
});
