import { canonicalJson, sha256Hex } from "./canonical.js";
import { configSnapshotDigest } from "./config-snapshot.js";
import { setOwn } from "./own-key.js";

type Mask = boolean | Mask[] | { [key: string]: Mask } | undefined | null;

interface RawChange {
  address: string;
  previous_address?: string;
  change: { actions: string[]; after?: unknown; after_unknown?: Mask; after_sensitive?: Mask; importing?: unknown };
}

/** Planned values with unknowns as a marker and sensitive values as the hash of their value. */
function planned(value: unknown, unknown: Mask, sensitive: Mask): unknown {
  if (unknown === true) return { unknown: true };
  if (sensitive === true) return { sensitive: sha256Hex(canonicalJson(value ?? null)) };
  if (Array.isArray(value)) return value.map((v, i) => planned(v, (unknown as Mask[] | undefined)?.[i], (sensitive as Mask[] | undefined)?.[i]));
  if (value && typeof value === "object") {
    const u = (unknown && typeof unknown === "object" ? unknown : {}) as Record<string, Mask>;
    const s = (sensitive && typeof sensitive === "object" ? sensitive : {}) as Record<string, Mask>;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) setOwn(out, k, planned(v, Object.hasOwn(u, k) ? u[k] : undefined, Object.hasOwn(s, k) ? s[k] : undefined));
    for (const [k, m] of Object.entries(u)) if (!Object.hasOwn(out, k) && m === true) setOwn(out, k, { unknown: true });
    return out;
  }
  return value ?? null;
}

/**
 * The change fingerprint: a hash of every resource change's address, actions
 * and planned values, and of the configuration that runs at apply (the plan
 * JSON's `configuration`, provisioners and their expressions included, and
 * the source files the plan file carries, where an interpolated command's
 * text is), independent of order, run ids and timestamps. Two plans of the
 * same change from the same configuration have the same fingerprint; any
 * changed value or line of configuration changes it.
 *
 * What an `import` block imports (terraform's `importing`, e.g. `{ id }`) is
 * part of the change, a plain import (a no-op otherwise) included: the id
 * may come from a variable, which neither the configuration nor the plan
 * file's sources show. A change that imports nothing hashes exactly as it
 * did before `importing` was added, so approvals of such plans still match.
 */
export function changeFingerprint(planJson: unknown, planFile: Buffer | undefined): string {
  const plan = planJson as { resource_changes?: RawChange[]; configuration?: unknown };
  const changes = (plan.resource_changes ?? [])
    .filter((rc) => !(rc.change.actions.length === 1 && rc.change.actions[0] === "no-op" && !rc.previous_address && !rc.change.importing))
    .map((rc) => ({
      address: rc.address,
      previous_address: rc.previous_address ?? null,
      actions: rc.change.actions,
      after: planned(rc.change.after, rc.change.after_unknown, rc.change.after_sensitive),
      ...(rc.change.importing ? { importing: rc.change.importing } : {}),
    }))
    .sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  // The configuration holds no path of the checkout (module sources are as written, `path.module` a reference), so it is stable across checkouts.
  const configuration = plan.configuration ?? null;
  const snapshot = planFile ? configSnapshotDigest(planFile) : null;
  return sha256Hex(canonicalJson({ changes, configuration, snapshot }));
}
