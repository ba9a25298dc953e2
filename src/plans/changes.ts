import { applyTimeCode, type ApplyTimeCode } from "./apply-time.js";
import { configurationFacts, type ConfigurationFacts } from "./plan-configuration.js";
import { setOwn } from "./own-key.js";

/** What a reviewer needs from `terraform show -json`, with secrets already replaced. */

export type { ChangeAction } from "./change-action.js";
import type { ChangeAction } from "./change-action.js";

/** Stand-ins for values terraform hides or does not know yet. */
export const SENSITIVE = { __plangate__: "sensitive" } as const;
export const UNKNOWN = { __plangate__: "unknown" } as const;

export interface ResourceChange {
  address: string;
  previousAddress?: string;
  type: string;
  action: ChangeAction;
  /** Terraform's raw actions, e.g. ["delete", "create"]. */
  actions: string[];
  before: unknown;
  after: unknown;
  replacePaths?: unknown[];
  /**
   * Set when the resource is imported by this plan, with the id it is
   * imported from (an id is what a reviewer approves: another id is another
   * change). A plain import (nothing else changes) has action "import"; one
   * that is also changed (an update, say) has that change as its action.
   */
  imported?: { id?: string };
  /** The provider that manages it, e.g. registry.terraform.io/hashicorp/aws (what policies see as resource.provider). */
  provider?: string;
  /** From the plan's configuration: the source of the module it is in, its provider's version constraint (resource.module_source, resource.provider_version_constraint). */
  moduleSource?: ConfigurationFacts["moduleSource"];
  providerVersionConstraint?: ConfigurationFacts["providerVersionConstraint"];
}

export interface ChangeCounts {
  add: number;
  change: number;
  destroy: number;
  replace: number;
}

export interface OutputChange {
  name: string;
  action: "create" | "update" | "delete";
  before: unknown;
  after: unknown;
}

export interface PlanChanges {
  resources: ResourceChange[];
  counts: ChangeCounts;
  /** Root module output values that change. */
  outputs?: OutputChange[];
  /** Changes made outside terraform that this plan found (resource_drift). */
  drift?: ResourceChange[];
  /** Provisioners of the resources this plan creates, replaces or destroys: code that runs at apply. */
  applyTime?: ApplyTimeCode[];
}

type Mask = boolean | Mask[] | { [key: string]: Mask } | undefined | null;

/** Replaces every value marked in `mask` (true at that path) with `stand`. */
function applyMask(value: unknown, mask: Mask, stand: unknown): unknown {
  if (mask === true) return stand;
  if (!mask || typeof mask !== "object") return value;
  if (Array.isArray(value)) return value.map((v, i) => applyMask(v, (mask as Mask[])[i], stand));
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) setOwn(out, k, applyMask(v, Object.hasOwn(mask, k) ? (mask as Record<string, Mask>)[k] : undefined, stand));
    // Unknown attributes may be absent from `after` altogether.
    for (const [k, m] of Object.entries(mask as Record<string, Mask>)) if (!Object.hasOwn(out, k) && m === true) setOwn(out, k, stand);
    return out;
  }
  return value;
}

function classify(actions: string[], change: RawChange): ChangeAction | undefined {
  const key = actions.join(",");
  if (key === "create") return "create";
  if (key === "update") return "update";
  if (key === "delete") return "delete";
  if (key === "read") return "read";
  if (key === "forget") return "forget";
  if (key === "delete,create" || key === "create,delete") return "replace";
  if (key === "no-op") {
    if (change.importing) return "import";
    return undefined;
  }
  return undefined;
}

interface RawChange {
  actions: string[];
  before?: unknown;
  after?: unknown;
  after_unknown?: Mask;
  before_sensitive?: Mask;
  after_sensitive?: Mask;
  replace_paths?: unknown[];
  importing?: unknown;
}

interface RawResourceChange {
  address: string;
  previous_address?: string;
  type: string;
  mode?: string;
  module_address?: string;
  provider_name?: string;
  change: RawChange;
}

/** Every scalar terraform marked sensitive anywhere in the plan (before or after). */
function sensitiveValues(raw: RawResourceChange[]): Set<string> {
  const found = new Set<string>();
  const collect = (value: unknown, mask: Mask) => {
    if (mask === true) {
      const walk = (v: unknown) => {
        if (v && typeof v === "object") Object.values(v).forEach(walk);
        else if ((typeof v === "string" || typeof v === "number") && String(v).length >= 3) found.add(String(v));
      };
      walk(value);
    } else if (mask && typeof mask === "object" && value && typeof value === "object") {
      for (const [k, m] of Object.entries(mask)) collect((value as Record<string, unknown>)[k], m);
    }
  };
  for (const rc of raw) {
    collect(rc.change.before, rc.change.before_sensitive);
    collect(rc.change.after, rc.change.after_sensitive);
  }
  return found;
}

/**
 * Terraform does not always carry the sensitive mark to values derived from a
 * sensitive one (terraform_data's output, say): hide those copies as well.
 */
function maskCopies(value: unknown, secrets: Set<string>): unknown {
  if (!secrets.size) return value;
  if (typeof value === "string" || typeof value === "number") {
    const text = String(value);
    if (secrets.has(text)) return SENSITIVE;
    if (typeof value === "number") return value;
    let masked = text;
    for (const secret of secrets) if (masked.includes(secret)) masked = masked.split(secret).join("(sensitive)");
    return masked;
  }
  if (Array.isArray(value)) return value.map((v) => maskCopies(v, secrets));
  if (value && typeof value === "object" && !("__plangate__" in value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskCopies(v, secrets)]));
  }
  return value;
}

const ORDER: ChangeAction[] = ["delete", "replace", "update", "create", "move", "import", "forget", "read"];

interface RawOutputChange {
  actions: string[];
  before?: unknown;
  after?: unknown;
  after_unknown?: boolean;
  before_sensitive?: boolean;
  after_sensitive?: boolean;
}

/** Parses a plan's JSON (format 1.x) into the changes shown to reviewers; no-ops are left out. */
export function parsePlanChanges(planJson: unknown): PlanChanges {
  const plan = planJson as { resource_changes?: RawResourceChange[]; resource_drift?: RawResourceChange[]; output_changes?: Record<string, RawOutputChange> };
  const raw = plan.resource_changes ?? [];
  const drifted = plan.resource_drift ?? [];
  const secrets = sensitiveValues([...raw, ...drifted]);
  const facts = configurationFacts(planJson);
  const resources = toResourceChanges(raw, secrets, facts);
  const drift = toResourceChanges(drifted, secrets, facts);
  const applyTime = applyTimeCode(planJson, raw, (rc) => classify(rc.change.actions, rc.change), (value) => maskCopies(value, secrets));
  const outputs: OutputChange[] = [];
  for (const [name, oc] of Object.entries(plan.output_changes ?? {}).sort(([a], [b]) => compareAddresses(a, b))) {
    const action = oc.actions.join(",") === "create" ? "create" : oc.actions.join(",") === "delete" ? "delete" : oc.actions.join(",") === "update" ? "update" : undefined;
    if (!action) continue;
    const before = oc.before_sensitive ? SENSITIVE : maskCopies(oc.before ?? null, secrets);
    const after = oc.after_unknown ? UNKNOWN : oc.after_sensitive ? SENSITIVE : maskCopies(oc.after ?? null, secrets);
    outputs.push({ name, action, before, after });
  }
  return { resources, counts: countChanges(resources), ...(outputs.length ? { outputs } : {}), ...(drift.length ? { drift } : {}), ...(applyTime.length ? { applyTime } : {}) };
}

function toResourceChanges(raw: RawResourceChange[], secrets: Set<string>, facts: ReturnType<typeof configurationFacts>): ResourceChange[] {
  const resources: ResourceChange[] = [];
  for (const rc of raw) {
    const change = rc.change;
    let action = classify(change.actions, change);
    if (!action && rc.previous_address && rc.previous_address !== rc.address) action = "move";
    if (!action) continue;
    const before = maskCopies(applyMask(change.before ?? null, change.before_sensitive, SENSITIVE), secrets);
    const after = maskCopies(applyMask(applyMask(change.after ?? null, change.after_sensitive, SENSITIVE), change.after_unknown, UNKNOWN), secrets);
    resources.push({
      address: rc.address,
      ...(rc.previous_address && rc.previous_address !== rc.address ? { previousAddress: rc.previous_address } : {}),
      type: rc.type,
      action,
      actions: change.actions,
      before,
      after,
      ...(change.replace_paths?.length ? { replacePaths: change.replace_paths } : {}),
      ...(change.importing ? { imported: importedFrom(change.importing, secrets) } : {}),
      ...(rc.provider_name ? { provider: rc.provider_name } : {}),
      ...facts(rc.address, rc.module_address),
    });
  }
  resources.sort((a, b) => ORDER.indexOf(a.action) - ORDER.indexOf(b.action) || compareAddresses(a.address, b.address));
  return resources;
}

/** Terraform's `importing` ({ id } for an import block with an id); newer terraform may name an identity instead. */
function importedFrom(importing: unknown, secrets: Set<string>): { id?: string } {
  const id = maskCopies((importing as { id?: unknown } | null)?.id, secrets);
  return typeof id === "string" && id ? { id } : {};
}

const collator = new Intl.Collator("en", { numeric: true });
/** Address order a reader expects: x[2] before x[10]. */
const compareAddresses = (a: string, b: string) => collator.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);

export function countChanges(resources: ResourceChange[]): ChangeCounts {
  const counts: ChangeCounts = { add: 0, change: 0, destroy: 0, replace: 0 };
  for (const r of resources) {
    if (r.action === "create") counts.add++;
    else if (r.action === "update") counts.change++;
    else if (r.action === "delete") counts.destroy++;
    else if (r.action === "replace") counts.replace++;
  }
  return counts;
}
