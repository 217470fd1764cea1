// Was a mail sent by a program rather than a person? RFC 3834: an
// Auto-Submitted header other than "no"; by long custom: Precedence bulk, junk
// or list. Such mail is never answered automatically (no bounce, no notice).

type Headers = ReadonlyArray<{ key: string; value: string }>;

/** The first word of a header value, lower-cased and bounded: "auto-replied; x=y" -> "auto-replied". */
function headerWord(headers: Headers, key: string): string | null {
  const v = headers.find((h) => h.key === key)?.value;
  return v === undefined ? null : (v.slice(0, 64).trim().toLowerCase().split(/[\s;(]/, 1)[0] ?? '');
}

export function isAutomatic(headers: Headers): boolean {
  const auto = headerWord(headers, 'auto-submitted');
  const precedence = headerWord(headers, 'precedence');
  return (auto !== null && auto !== 'no') || precedence === 'bulk' || precedence === 'junk' || precedence === 'list';
}
