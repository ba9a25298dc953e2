import type { ChangeAction } from "./change-action.js";
import { INSTANCE_KEY } from "./plan-configuration.js";

/**
 * Code a plan does not run but its apply does, with the apply's credentials:
 * provisioners (local-exec, remote-exec, file). Shown to reviewers as running
 * at apply; the configuration they come from is part of the fingerprint.
 */

/** One argument of a provisioner: a constant, or an expression known only by what it refers to. */
export interface ApplyTimeArgument {
  name: string;
  /** Set when the argument is a constant. */
  value?: unknown;
  /** What a non-constant expression refers to (e.g. var.who, self.id); empty for a function call of constants. */
  references?: string[];
}

export interface Provisioner {
  /** local-exec, remote-exec, file. */
  type: string;
  arguments: ApplyTimeArgument[];
}

/** A resource block with provisioners, and its instances this plan creates, replaces or destroys. */
export interface ApplyTimeCode {
  /** The block's address: its module path without instance keys, then type.name. */
  resource: string;
  instances: { address: string; action: ChangeAction }[];
  provisioners: Provisioner[];
}

interface RawExpression {
  constant_value?: unknown;
  references?: string[];
}

interface RawProvisioner {
  type?: string;
  expressions?: Record<string, RawExpression | unknown>;
}

interface RawModule {
  resources?: { address?: string; mode?: string; provisioners?: RawProvisioner[] }[];
  module_calls?: Record<string, { module?: RawModule }>;
}

interface RawResourceChange {
  address: string;
  mode?: string;
  change: { actions: string[] };
}

/** Every managed resource block with provisioners, by its address without instance keys (module_calls followed to any depth). */
function provisionedBlocks(root: RawModule | undefined): Map<string, RawProvisioner[]> {
  const blocks = new Map<string, RawProvisioner[]>();
  const visit = (module: RawModule | undefined, prefix: string) => {
    if (!module || typeof module !== "object") return;
    for (const resource of module.resources ?? []) {
      if (resource.mode === "managed" && resource.address && resource.provisioners?.length) blocks.set(`${prefix}${resource.address}`, resource.provisioners);
    }
    for (const [name, call] of Object.entries(module.module_calls ?? {})) visit(call?.module, `${prefix}module.${name}.`);
  };
  visit(root, "");
  return blocks;
}

function argument(name: string, raw: unknown, clean: (value: unknown) => unknown): ApplyTimeArgument {
  const expression = (raw ?? {}) as RawExpression;
  if (typeof expression === "object" && Object.hasOwn(expression, "constant_value")) return { name, value: clean(expression.constant_value) };
  const references = Array.isArray(expression.references) ? expression.references.filter((r): r is string => typeof r === "string") : [];
  return { name, references: references.map((r) => String(clean(r))) };
}

/**
 * The provisioners of every resource this plan creates, replaces or destroys
 * (creation-time ones run at create, `when = destroy` ones at destroy; the
 * plan's JSON does not say which a provisioner is, so each is listed), from
 * the plan's `configuration`. `clean` hides secret values in constants.
 */
export function applyTimeCode(planJson: unknown, raw: RawResourceChange[], action: (rc: RawResourceChange) => ChangeAction | undefined, clean: (value: unknown) => unknown): ApplyTimeCode[] {
  const blocks = provisionedBlocks((planJson as { configuration?: { root_module?: RawModule } }).configuration?.root_module);
  if (!blocks.size) return [];
  const found = new Map<string, ApplyTimeCode>();
  for (const rc of raw) {
    if (rc.mode === "data" || !(rc.change.actions.includes("create") || rc.change.actions.includes("delete"))) continue;
    const resource = rc.address.replace(INSTANCE_KEY, "");
    const provisioners = blocks.get(resource);
    const act = action(rc);
    if (!provisioners || !act) continue;
    let code = found.get(resource);
    if (!code) {
      code = {
        resource,
        instances: [],
        provisioners: provisioners.map((p) => ({
          type: String(p.type ?? "unknown"),
          arguments: Object.entries(p.expressions ?? {})
            .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
            .map(([name, expression]) => argument(name, expression, clean)),
        })),
      };
      found.set(resource, code);
    }
    code.instances.push({ address: rc.address, action: act });
  }
  return [...found.values()];
}
