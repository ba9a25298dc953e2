import { setOwn } from "./own-key.js";

export const MASK = "***";
const MIN_SECRET_LENGTH = 4;
/** Encoded forms shorter than this are not masked on their own (too likely to hit innocent text). */
const MIN_VARIANT_LENGTH = 6;

export type Masker = (text: string) => string;

/**
 * The base64 text that encodes `value` whatever its offset in a longer
 * encoded string: for each of the three alignments, the characters that
 * depend only on the value's bytes.
 */
function base64Cores(value: Buffer): string[] {
  const cores: string[] = [];
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), value]).toString("base64");
    const start = [0, 2, 3][offset]!;
    const total = offset + value.length;
    const rest = total % 3;
    const end = Math.floor(total / 3) * 4 + (rest === 0 ? 0 : rest === 1 ? 1 : 2);
    const core = encoded.slice(start, end);
    if (core.length >= MIN_VARIANT_LENGTH) cores.push(core);
  }
  return cores;
}

/** The forms a secret value takes when a PR author tries to smuggle it out. */
export function secretVariants(secret: string): string[] {
  const bytes = Buffer.from(secret, "utf8");
  const b64 = base64Cores(bytes);
  const variants = [
    secret,
    [...secret].reverse().join(""),
    ...b64,
    ...b64.map((b) => b.replace(/\+/g, "-").replace(/\//g, "_")),
    bytes.toString("hex"),
    bytes.toString("hex").toUpperCase(),
    encodeURIComponent(secret),
    encodeURIComponent(secret).toLowerCase(),
    JSON.stringify(secret).slice(1, -1),
  ];
  return [...new Set(variants)].filter((v) => v === secret || v.length >= MIN_VARIANT_LENGTH);
}

/**
 * Replaces every occurrence of the given secret values (raw, reversed,
 * base64, base64url, hex, URL- and JSON-encoded), and every match of the
 * operator's patterns, with ***. Values shorter than four characters are left
 * alone: masking "a" everywhere would hide the plan, not a secret.
 */
export function createMasker(secrets: string[], patterns: RegExp[] = []): Masker {
  const values = [...new Set(secrets.filter((s) => s.length >= MIN_SECRET_LENGTH).flatMap(secretVariants))].sort((a, b) => b.length - a.length);
  const global = patterns.map((p) => new RegExp(p.source, p.flags.includes("g") ? p.flags : `${p.flags}g`));
  if (!values.length && !global.length) return (text) => text;
  return (text) => {
    let out = text;
    for (const value of values) if (out.includes(value)) out = out.split(value).join(MASK);
    for (const pattern of global) out = out.replace(pattern, MASK);
    return out;
  };
}

/** Masks every string (keys included) inside a JSON-like value; a new value, the given one is left as it is. */
export function maskDeep<T>(value: T, mask: Masker): T {
  if (typeof value === "string") return mask(value) as T;
  if (Array.isArray(value)) {
    const out: unknown[] = new Array(value.length);
    for (let i = 0; i < value.length; i++) out[i] = maskDeep(value[i], mask);
    return out as T;
  }
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      const masked = maskDeep((value as Record<string, unknown>)[key], mask);
      // A key can hold a secret too; "__proto__" holds none.
      setOwn(out, key === "__proto__" ? key : mask(key), masked);
    }
    return out as T;
  }
  return value;
}
