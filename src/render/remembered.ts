/** `map`'s value for `key`, made (and kept) the first time it is asked for: text rendered once, asked for many times. */
export function remembered<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let value = map.get(key);
  if (value === undefined) map.set(key, (value = make()));
  return value;
}
