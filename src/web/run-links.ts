import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";

const DEFAULT_TTL_MS = 30 * 24 * 3_600_000;

/**
 * Unguessable, expiring links to run pages: an HMAC (keyed from the
 * encryption key) over the run group id and the expiry time.
 */
export class RunLinks {
  private readonly key: Buffer;

  constructor(
    encryptionKey: Buffer,
    private readonly baseUrl: string,
    private readonly ttlMs = DEFAULT_TTL_MS,
  ) {
    this.key = Buffer.from(hkdfSync("sha256", encryptionKey, Buffer.alloc(0), "plangate run links", 32));
  }

  private sign(groupId: number, expires: number): string {
    return createHmac("sha256", this.key).update(`${groupId}.${expires}`).digest("base64url");
  }

  url(groupId: number, now = Date.now()): string {
    const expires = Math.floor((now + this.ttlMs) / 1000);
    return `${this.baseUrl}/runs/${groupId}?expires=${expires}&token=${this.sign(groupId, expires)}`;
  }

  /** True only for a token made by this server for this group that has not expired. */
  verify(groupId: number, expires: number, token: string, now = Date.now()): boolean {
    if (!Number.isSafeInteger(expires) || expires * 1000 < now) return false;
    const expected = Buffer.from(this.sign(groupId, expires));
    const given = Buffer.from(token);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}
