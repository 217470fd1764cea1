// The key-creation form's field checks: each error names its field, in words
// that say what to type (issue 12: errors showed under the button, not at the field).

import { describe, expect, it } from 'vitest';
import { keyFormErrors } from '../../extension/pages/options/key-form.ts';

const good = { address: 'bob@example.org', passphrase: 'four random words here', again: 'four random words here' };

describe('keyFormErrors', () => {
  it('lets a good form through', () => {
    expect(keyFormErrors(good)).toEqual({});
    expect(keyFormErrors({ ...good, address: '  Bob@Example.org ' })).toEqual({});
  });

  it('puts each error at its field', () => {
    expect(keyFormErrors({ ...good, address: '' })).toEqual({ address: expect.stringContaining('Type your email address') });
    expect(keyFormErrors({ ...good, address: 'bob@example' })).toEqual({ address: expect.stringContaining('needs a dot') });
    expect(keyFormErrors({ ...good, address: 'bob example.org' })).toEqual({ address: expect.stringContaining('not an email address') });
    expect(keyFormErrors({ ...good, passphrase: 'short', again: 'short' })).toEqual({ passphrase: expect.stringContaining('at least 8 characters') });
    expect(keyFormErrors({ ...good, again: 'something else' })).toEqual({ again: expect.stringContaining('differ') });
  });

  it('reports several fields at once, and a short passphrase before a mismatch', () => {
    expect(Object.keys(keyFormErrors({ address: 'x', passphrase: 'short', again: 'other' }))).toEqual(['address', 'passphrase']);
  });
});
