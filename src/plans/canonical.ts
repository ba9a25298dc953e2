import { createHash } from "node:crypto";
import { setOwn } from "./own-key.js";

/** A key an object orders before all others whatever its insertion order (an array index): JSON.stringify cannot sort it. */
const INDEX_LIKE = /^\d+$/;

class IndexLikeKey extends Error {}

/** JSON.stringify's replacer: each plain object comes back with its keys in sorted order. */
function sortKeys(_key: string, value: unknown): unknown {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  const keys = Object.keys(value);
  let sorted = true;
  for (let i = 0; i < keys.length; i++) {
    if (INDEX_LIKE.test(keys[i]!)) throw new IndexLikeKey();
    if (i > 0 && keys[i - 1]! > keys[i]!) sorted = false;
  }
  if (sorted) return value;
  const out: Record<string, unknown> = {};
  for (const key of keys.sort()) setOwn(out, key, (value as Record<string, unknown>)[key]);
  return out;
}

/**
 * JSON with object keys sorted at every depth: the same content always gives
 * the same text. Plans of thousands of resources are fingerprinted with this,
 * so it is JSON.stringify sorting keys as it goes (four times quicker than a
 * walk in JavaScript); an object with an array-index key ("10" before "9"),
 * which JSON.stringify cannot order, takes the walk (writtenOut).
 */
export function canonicalJson(value: unknown): string {
  if (value === undefined) return "null";
  try {
    return JSON.stringify(value, sortKeys);
  } catch (error) {
    if (error instanceof IndexLikeKey) return writtenOut(value);
    throw error;
  }
}

/** The definition of canonicalJson, written out. */
export function writtenOut(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value ?? null);
  if (Array.isArray(value)) {
    let out = "[";
    for (let i = 0; i < value.length; i++) out += (i ? "," : "") + writtenOut(value[i]);
    return `${out}]`;
  }
  const object = value as Record<string, unknown>;
  let out = "{";
  for (const key of Object.keys(object).sort()) {
    const v = object[key];
    if (v === undefined) continue;
    out += `${out.length > 1 ? "," : ""}${JSON.stringify(key)}:${writtenOut(v)}`;
  }
  return `${out}}`;
}

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}
