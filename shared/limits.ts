// Limits on what one incoming post may cost. Every size or count that input
// controls is bounded here, with defaults a list operator can lower or raise.

export interface OpenLimits {
  /** The whole incoming mail, in bytes (the SMTP size limit, default 25 MB). */
  maxMessageBytes: number;
  /** What compressed content may expand to, in bytes. */
  maxDecompressedBytes: number;
  /** OpenPGP packets at any one level (outer message, decrypted, decompressed). */
  maxPackets: number;
}

export const DEFAULT_OPEN_LIMITS: Readonly<OpenLimits> = Object.freeze({
  maxMessageBytes: 25 * 1024 * 1024,
  maxDecompressedBytes: 64 * 1024 * 1024,
  maxPackets: 64,
});

export function resolveLimits(partial: Partial<OpenLimits> = {}): OpenLimits {
  return { ...DEFAULT_OPEN_LIMITS, ...partial };
}
