import { diffArrays } from "diff";
import type { ResourceChange } from "../plans/changes.js";
import { formatAttributes } from "./format-value.js";

/** A unified diff (every line kept, so reviewers see the whole resource) of a resource's attributes. */
export function attributeDiff(change: ResourceChange): string {
  const before = change.action === "create" ? [] : formatAttributes(change.before);
  const after = change.action === "delete" || change.action === "forget" ? [] : formatAttributes(change.after);
  const out: string[] = [];
  for (const part of diffArrays(before, after)) {
    const sign = part.added ? "+" : part.removed ? "-" : " ";
    for (const line of part.value) out.push(`${sign} ${line}`);
  }
  return out.join("\n");
}
