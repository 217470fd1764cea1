// A small SMTP client on a raw socket, for sending many hostile mails over one
// persistent connection: the envelope commands go pipelined (RFC 2920), the
// data is sent byte for byte (only dot-stuffed), and every reply is returned
// as it came, so a test can tell a reply (any code) from a dropped connection
// or a server that does not answer in time.

import { connect, type Socket } from 'node:net';

export interface Reply {
  code: number;
  text: string;
}

export class SmtpGone extends Error {
  override name = 'SmtpGone';
}

export class SmtpTimeout extends Error {
  override name = 'SmtpTimeout';
}

/** Dot-stuffs (RFC 5321 4.5.2) and terminates the data; bare LF counts as a line end, as smtp-server reads it. */
export function dataFrame(bytes: Uint8Array): Buffer {
  const src = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const parts: Buffer[] = [];
  let from = 0;
  if (src[0] === 0x2e) { parts.push(Buffer.from('.')); }
  for (let i = src.indexOf(0x0a); i >= 0; i = src.indexOf(0x0a, i + 1)) {
    if (src[i + 1] === 0x2e) {
      parts.push(src.subarray(from, i + 1), Buffer.from('.'));
      from = i + 1;
    }
  }
  parts.push(src.subarray(from));
  const ends = src.length >= 2 && src[src.length - 2] === 0x0d && src[src.length - 1] === 0x0a;
  parts.push(Buffer.from(ends ? '.\r\n' : '\r\n.\r\n'));
  return Buffer.concat(parts);
}

export class RawSmtp {
  private buf = '';
  private readonly waiting: Array<{ resolve: (r: Reply) => void; reject: (e: Error) => void }> = [];
  private gone: Error | null = null;
  private dirty = false;
  /** The 421 or close that ended the session, if any. */
  closed = false;

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.onData(d));
    const end = (e?: Error) => {
      this.closed = true;
      this.gone ??= new SmtpGone(e ? `connection error: ${(e as NodeJS.ErrnoException).code ?? e.message}` : 'connection closed');
      for (const w of this.waiting.splice(0)) w.reject(this.gone);
    };
    socket.on('error', end);
    socket.on('close', () => end());
  }

  static async connect(port: number, host = '127.0.0.1', timeoutMs = 15_000): Promise<RawSmtp> {
    const socket = connect(port, host);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const c = new RawSmtp(socket);
    const greeting = await c.reply(timeoutMs);
    if (greeting.code !== 220) throw new SmtpGone(`greeting ${greeting.code}`);
    c.write('EHLO fuzz.test\r\n');
    const ehlo = await c.reply(timeoutMs);
    if (ehlo.code !== 250) throw new SmtpGone(`EHLO ${ehlo.code}`);
    return c;
  }

  private onData(d: Buffer): void {
    this.buf += d.toString('latin1');
    for (;;) {
      // A reply ends with a line "NNN text" (a space, not a dash, after the code).
      const m = /^(\d{3})[ \r](?:[^\n]*)\n/m.exec(this.buf);
      if (!m) {
        if (this.buf.length > 1_000_000) this.socket.destroy(new Error('reply too long'));
        return;
      }
      const end = m.index + m[0].length;
      const text = this.buf.slice(0, end).trimEnd();
      this.buf = this.buf.slice(end);
      const w = this.waiting.shift();
      if (w) w.resolve({ code: Number(m[1]), text });
    }
  }

  private write(s: string | Buffer): void {
    this.socket.write(s);
  }

  private reply(timeoutMs: number): Promise<Reply> {
    if (this.gone) return Promise.reject(this.gone);
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new SmtpTimeout(`no reply within ${timeoutMs} ms`));
        this.socket.destroy(); // the reply order is lost: this session is done
      }, timeoutMs);
      const entry = {
        resolve: (r: Reply) => { clearTimeout(timer); resolve(r); },
        reject: (e: Error) => { clearTimeout(timer); reject(e); },
      };
      this.waiting.push(entry);
    });
  }

  /**
   * One transaction: MAIL, RCPT (each), DATA pipelined, then the data. Resolves
   * with the reply that ended the transaction (the first refusal, or the reply
   * to the data); rejects with SmtpGone or SmtpTimeout.
   */
  async send(from: string, to: string[], data: Uint8Array, timeoutMs = 60_000): Promise<Reply> {
    const cmds = [...(this.dirty ? ['RSET'] : []), `MAIL FROM:<${from}>`, ...to.map((t) => `RCPT TO:<${t}>`), 'DATA'];
    // Each reply is awaited in turn; a later one failing meanwhile is not unhandled.
    const replies = cmds.map(() => { const r = this.reply(timeoutMs); r.catch(() => {}); return r; });
    this.write(cmds.map((c) => `${c}\r\n`).join(''));
    const got: Reply[] = [];
    for (const r of replies) got.push(await r);
    const envelope = got.slice(this.dirty ? 1 : 0);
    const data354 = envelope.at(-1)!;
    if (data354.code !== 354) {
      this.dirty = true;
      return envelope.find((r) => r.code >= 400) ?? data354;
    }
    const final = this.reply(timeoutMs);
    this.write(dataFrame(data));
    const r = await final;
    this.dirty = r.code !== 250;
    return r;
  }

  async quit(): Promise<void> {
    if (this.closed) return;
    const done = new Promise<void>((r) => this.socket.once('close', () => r()));
    this.socket.end('QUIT\r\n');
    setTimeout(() => this.socket.destroy(), 2000).unref();
    await done;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
