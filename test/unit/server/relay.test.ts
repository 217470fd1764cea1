import { describe, expect, it } from 'vitest';
import { classifySmtpError } from '../../../server/delivery/relay.ts';
import { codeOf } from '../../../server/log/log.ts';
import { LetterlockError } from '../../../shared/index.ts';

describe('relay error classes', () => {
  it('5xx is permanent, 4xx and connection errors are temporary', () => {
    expect(classifySmtpError({ responseCode: 550, response: '550 5.1.1 no such user' })).toMatchObject({ permanent: true, code: 'SMTP_550' });
    expect(classifySmtpError({ responseCode: 451, response: '451 try later' })).toMatchObject({ permanent: false, code: 'SMTP_451' });
    expect(classifySmtpError({ code: 'ECONNREFUSED' })).toMatchObject({ permanent: false, code: 'NET_ECONNREFUSED' });
    expect(classifySmtpError({ code: 'EENVELOPE', responseCode: 550 })).toMatchObject({ permanent: true });
    // A relay that refuses our login or TLS is a configuration problem: keep retrying.
    expect(classifySmtpError({ code: 'EAUTH', responseCode: 535 })).toMatchObject({ permanent: false, code: 'SMTP_535' });
    expect(classifySmtpError({ responseCode: 552, response: 'x\u0000\u00ff'.repeat(100) }).reason).toMatch(/^[\x20-\x7e]{0,200}$/);
  });
});

describe('log codes', () => {
  it('reduce any error to a code, never its message', () => {
    expect(codeOf(new LetterlockError('WRONG_KEY'))).toBe('WRONG_KEY');
    expect(codeOf(new Error('secret text of a post'))).toBe('INTERNAL');
    expect(codeOf({ code: 'secret text' })).toBe('INTERNAL');
    expect(codeOf({ responseCode: 554 })).toBe('SMTP_554');
    expect(codeOf(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBe('NET_ECONNRESET');
  });

  it('the event log accepts no free text (checked by tsc)', () => {
    const fields = (f: import('../../../server/log/log.ts').EventFields) => f;
    // @ts-expect-error: there is no field for text
    fields({ subject: 'anything' });
    // @ts-expect-error: codes are a closed set
    fields({ code: 'some words from a post' });
    expect(fields({ post: 1, code: 'WRONG_KEY' })).toEqual({ post: 1, code: 'WRONG_KEY' });
  });
});
