/** Names of variables whose values are secrets to be masked wherever they appear. */
export const SECRET_NAME = /SECRET|TOKEN|KEY|PASSWORD|CREDENTIAL/i;
export const MASK = "***";
const MIN_SECRET_LENGTH = 4;

export type Masker = (text: string) => string;

/**
 * Replaces every occurrence of the given secret values, and every match of
 * the operator's patterns, with ***. Short values are left alone: masking
 * "a" everywhere would hide the plan, not a secret.
 */
export function createMasker(secrets: string[], patterns: RegExp[] = []): Masker {
  const values = [...new Set(secrets.filter((s) => s.length >= MIN_SECRET_LENGTH))].sort((a, b) => b.length - a.length);
  const global = patterns.map((p) => new RegExp(p.source, p.flags.includes("g") ? p.flags : `${p.flags}g`));
  if (!values.length && !global.length) return (text) => text;
  return (text) => {
    let out = text;
    for (const value of values) if (out.includes(value)) out = out.split(value).join(MASK);
    for (const pattern of global) out = out.replace(pattern, MASK);
    return out;
  };
}

/** The masker of a project: its secret-looking env values plus the operator's patterns. */
export function projectMasker(env: Record<string, string>, patterns: RegExp[]): Masker {
  return createMasker(Object.entries(env).filter(([name]) => SECRET_NAME.test(name)).map(([, value]) => value), patterns);
}

/** Masks every string inside a JSON-like value. */
export function maskDeep<T>(value: T, mask: Masker): T {
  if (typeof value === "string") return mask(value) as T;
  if (Array.isArray(value)) return value.map((v) => maskDeep(v, mask)) as T;
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskDeep(v, mask)])) as T;
  return value;
}
