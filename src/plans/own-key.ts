/**
 * Sets `key` on `out` as an own, enumerable key. "__proto__" is data in a
 * plan (JSON.parse makes it an own key): assigned, it would set the object's
 * prototype instead and vanish from the comment and the fingerprint. (An
 * object without a prototype would do too, but V8 keeps those as slow
 * dictionaries: a 3,000-resource plan took a third longer to fingerprint.)
 */
export function setOwn(out: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__") Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  else out[key] = value;
}
