import { diffArrays } from "diff";
import type { OutputChange, ResourceChange } from "../plans/changes.js";
import { formatAttributes, formatValue } from "./format-value.js";

/** A unified diff (every line kept, so reviewers see the whole resource) of a resource's attributes. */
export function attributeDiff(change: ResourceChange): string {
  const before = change.action === "create" ? [] : formatAttributes(change.before);
  const after = change.action === "delete" || change.action === "forget" ? [] : formatAttributes(change.after);
  // A create or a destroy is all one side: nothing to line up.
  if (!before.length) return after.map((line) => `+ ${line}`).join("\n");
  if (!after.length) return before.map((line) => `- ${line}`).join("\n");
  const out: string[] = [];
  for (const part of diffArrays(before, after)) {
    const sign = part.added ? "+" : part.removed ? "-" : " ";
    for (const line of part.value) out.push(`${sign} ${line}`);
  }
  return out.join("\n");
}

/** Output value changes as diff lines: `- name = old` / `+ name = new`. */
export function outputDiff(outputs: OutputChange[]): string {
  const lines: string[] = [];
  const value = (sign: string, name: string, v: unknown) => {
    const [first, ...rest] = formatValue(v);
    lines.push(`${sign} ${name} = ${first}`, ...rest.map((l) => `${sign} ${l}`));
  };
  for (const o of outputs) {
    if (o.action !== "create") value("-", o.name, o.before);
    if (o.action !== "delete") value("+", o.name, o.after);
  }
  return lines.join("\n");
}
