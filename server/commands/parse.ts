// Reads the commands of a request mail from its decrypted, signed text. One
// syntax, like Schleuder's keywords: each command is one line `x-NAME [ARGUMENT]`
// (case-insensitive, an optional colon after the name), at the top of the body;
// blank lines between them are skipped and the first other line ends the list,
// so a quoted reply, a signature or an inline key below is never read as one.

export const MAX_COMMANDS = 20;
const MAX_LINE = 1000;
/** Lines looked at before giving up; a request is a handful of lines. */
const MAX_LINES = 200;

export type Command =
  | { name: 'help' }
  | { name: 'list-members' }
  | { name: 'fetch-key'; target: string }
  | { name: 'fetch-keys' }
  | { name: 'unsubscribe' }
  | { name: 'delivery'; form: 'pgp-mime' | 'inline' }
  | { name: 'replace-key' }
  | { name: 'list-name'; address: string };

/** A line that looked like a command and could not be read: then none of the mail's commands runs (as in Schleuder), so a typo never leaves half a request done. */
export interface CommandError {
  line: string;
  problem: string;
}

export interface ParsedCommands {
  commands: Command[];
  errors: CommandError[];
  /** More than MAX_COMMANDS command lines: nothing is executed. */
  tooMany: boolean;
}

const LINE = /^x-([a-z][a-z-]{0,30}):?(?:[ \t]+(.*))?$/i;

/** Only printable ASCII of a line is echoed in an answer (it goes back to its own author, encrypted). */
function echo(line: string): string {
  const s = line.replace(/[^\x20-\x7e]/g, '?');
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function one(name: string, arg: string): Command | string {
  switch (name) {
    case 'help':
      return arg ? 'x-help takes no argument' : { name: 'help' };
    case 'list-members':
      return arg ? 'x-list-members takes no argument' : { name: 'list-members' };
    case 'fetch-keys':
      return arg ? 'x-fetch-keys takes no argument (use x-fetch-key ADDRESS for one key)' : { name: 'fetch-keys' };
    case 'fetch-key':
      if (!arg) return 'x-fetch-key needs an address or a fingerprint (x-fetch-keys fetches all)';
      // A fingerprint may be written in groups (gpg prints it so); anything else is one word.
      if (/\s/.test(arg) && !/^[0-9a-f\s]+$/i.test(arg)) return 'x-fetch-key takes one address or fingerprint';
      return { name: 'fetch-key', target: arg };
    case 'unsubscribe':
      return arg ? 'x-unsubscribe takes no argument' : { name: 'unsubscribe' };
    case 'delivery': {
      const form = arg.toLowerCase();
      if (form === 'pgp-mime' || form === 'inline') return { name: 'delivery', form };
      return 'x-delivery needs pgp-mime or inline';
    }
    case 'list-name':
      // Schleuder's guard: a request naming another list runs nowhere.
      return /^\S{1,254}$/.test(arg) ? { name: 'list-name', address: arg.replace(/^<|>$/g, '').toLowerCase() } : 'x-list-name needs the list\'s address';
    case 'replace-key':
      return arg ? 'x-replace-key takes no argument: attach the new key or paste it below the commands' : { name: 'replace-key' };
    default:
      return `unknown command x-${name.toLowerCase()}`;
  }
}

export function parseCommands(text: string): ParsedCommands {
  const commands: Command[] = [];
  const errors: CommandError[] = [];
  let seen = 0;
  let lines = 0;
  let start = 0;
  while (start <= text.length && lines < MAX_LINES) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const raw = text.slice(start, Math.min(end, start + MAX_LINE + 1));
    start = end + 1;
    lines++;
    const line = raw.replace(/\r$/, '').trim();
    if (line === '') continue;
    if (raw.length > MAX_LINE) {
      errors.push({ line: echo(line), problem: 'line too long' });
      break;
    }
    if (!/^x-/i.test(line)) break; // the first line that is not a command ends them
    seen++;
    if (seen > MAX_COMMANDS) return { commands: [], errors: [], tooMany: true };
    const m = LINE.exec(line);
    if (!m) {
      errors.push({ line: echo(line), problem: 'not a command line (x-NAME, then an argument if it takes one)' });
      continue;
    }
    const parsed = one(m[1]!.toLowerCase(), (m[2] ?? '').trim());
    if (typeof parsed === 'string') errors.push({ line: echo(line), problem: parsed });
    else commands.push(parsed);
  }
  return { commands, errors, tooMany: false };
}
