/**
 * What a plan's `configuration` says about a resource that its change does
 * not: the source of the module it sits in, and the version constraint of
 * the provider configuration it uses (terraform records the constraint, not
 * the version it selected: that is in .terraform.lock.hcl). Policies read
 * both (resource.module_source, resource.provider_version_constraint).
 */

interface RawModule {
  resources?: { address?: string; provider_config_key?: string }[];
  module_calls?: Record<string, { source?: string; module?: RawModule }>;
}

interface RawConfiguration {
  provider_config?: Record<string, { version_constraint?: string }>;
  root_module?: RawModule;
}

/** Instance keys (`[0]`, `["a.b"]`) of an address, which the configuration does not have. */
export const INSTANCE_KEY = /\[(?:\d+|"(?:[^"\\]|\\.)*")\]/g;

export interface ConfigurationFacts {
  /** The module call's source as written (e.g. `./modules/db`, `terraform-aws-modules/vpc/aws`); undefined at the root. */
  moduleSource?: string;
  /** The version constraint of the resource's provider configuration (e.g. `~> 5.100`); undefined when it has none. */
  providerVersionConstraint?: string;
}

/** A lookup of the facts for a resource change by its address and module address (instance keys allowed), from one walk of the configuration. */
export function configurationFacts(planJson: unknown): (address: string, moduleAddress: string | undefined) => ConfigurationFacts {
  const configuration = ((planJson as { configuration?: RawConfiguration } | null)?.configuration ?? {}) as RawConfiguration;
  const sources = new Map<string, string>();
  const providerKeys = new Map<string, string>();
  const visit = (module: RawModule | undefined, prefix: string) => {
    if (!module || typeof module !== "object") return;
    for (const resource of Array.isArray(module.resources) ? module.resources : []) {
      if (typeof resource?.address === "string" && typeof resource.provider_config_key === "string") providerKeys.set(`${prefix}${resource.address}`, resource.provider_config_key);
    }
    for (const [name, call] of Object.entries(module.module_calls ?? {})) {
      const path = `${prefix}module.${name}`;
      if (typeof call?.source === "string") sources.set(path, call.source);
      visit(call?.module, `${path}.`);
    }
  };
  visit(configuration.root_module, "");
  const providers = configuration.provider_config ?? {};
  return (address, moduleAddress) => {
    const source = moduleAddress ? sources.get(moduleAddress.replace(INSTANCE_KEY, "")) : undefined;
    const key = providerKeys.get(address.replace(INSTANCE_KEY, ""));
    const constraint = key !== undefined && Object.hasOwn(providers, key) ? providers[key]?.version_constraint : undefined;
    return { ...(source !== undefined ? { moduleSource: source } : {}), ...(typeof constraint === "string" && constraint ? { providerVersionConstraint: constraint } : {}) };
  };
}
