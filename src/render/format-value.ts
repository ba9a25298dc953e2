import { SENSITIVE, UNKNOWN } from "../plans/changes.js";

const isStandIn = (v: unknown, stand: object) =>
  !!v && typeof v === "object" && (v as Record<string, unknown>).__plangate__ === (stand as Record<string, unknown>).__plangate__;

function scalar(value: unknown): string | undefined {
  if (isStandIn(value, SENSITIVE)) return "(sensitive)";
  if (isStandIn(value, UNKNOWN)) return "(known after apply)";
  if (value === null || value === undefined) return "null";
  if (typeof value === "string") return value.includes("\n") ? undefined : JSON.stringify(value);
  if (typeof value !== "object") return String(value);
  return undefined;
}

const keyText = (key: string) => (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(key) ? key : JSON.stringify(key));

/**
 * Prints a value as HCL-like lines with keys in stable order, so that two
 * versions of a resource diff line by line and multi-line strings diff by line.
 */
export function formatValue(value: unknown, indent = ""): string[] {
  const inner = `${indent}  `;
  const single = scalar(value);
  if (single !== undefined) return [single];
  if (typeof value === "string") return ["<<-EOT", ...value.replace(/\n$/, "").split("\n").map((l) => `${inner}${l}`), `${indent}EOT`];
  if (Array.isArray(value)) {
    if (!value.length) return ["[]"];
    const lines = ["["];
    for (const item of value) {
      const [first, ...rest] = formatValue(item, inner);
      lines.push(`${inner}${first}`, ...rest);
      lines[lines.length - 1] += ",";
    }
    return [...lines, `${indent}]`];
  }
  const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (!entries.length) return ["{}"];
  const lines = ["{"];
  for (const [key, v] of entries) {
    const [first, ...rest] = formatValue(v, inner);
    lines.push(`${inner}${keyText(key)} = ${first}`, ...rest);
  }
  return [...lines, `${indent}}`];
}

/** The attribute lines of a resource body (without the outer braces). */
export function formatAttributes(value: unknown): string[] {
  if (value === null || value === undefined) return [];
  const lines = formatValue(value);
  if (lines.length === 1) return lines;
  return lines.slice(1, -1).map((l) => l.slice(2));
}
