import picomatch from "picomatch";

/**
 * plangate's own settings: never passed to a project. Exact names, and
 * prefixes (written with a trailing `*`) that cover whole families.
 */
export const OWN_SETTINGS = ["APP_ID", "PRIVATE_KEY*", "WEBHOOK_SECRET", "WEBHOOK_PROXY_URL", "DATABASE_URL", "PLANGATE_*", "GHE_*", "GITHUB_*"];

const NAME_GLOB = /^[A-Za-z_*][A-Za-z0-9_*]*$/;

/** True when some name of the family `own` (exact, or `PREFIX*`) could match the allowlist glob. */
function overlaps(glob: string, own: string): boolean {
  const family = own.endsWith("*");
  const ownText = family ? own.slice(0, -1) : own;
  if (!glob.includes("*")) return family ? glob.startsWith(ownText) : glob === ownText;
  if (!family) return picomatch.isMatch(ownText, glob);
  // A glob whose literal head is compatible with the prefix can always be completed into a name of the family.
  const head = glob.slice(0, glob.indexOf("*"));
  return ownText.startsWith(head) || head.startsWith(ownText);
}

/** True when the variable `name` is one of plangate's own settings. */
export const isOwnSetting = (name: string) => OWN_SETTINGS.some((own) => overlaps(name, own));

/** A validated allowlist of environment variable names (`*` globs). */
export interface EnvAllowlist {
  patterns: string[];
  allows(name: string): boolean;
}

/** Parses a comma list of names or globs; refuses any that could reach plangate's own settings. */
export function parseEnvAllowlist(list: string): EnvAllowlist | string {
  const patterns = list.split(",").map((p) => p.trim()).filter(Boolean);
  for (const pattern of patterns) {
    if (!NAME_GLOB.test(pattern)) return `"${pattern}" is not a variable name or a * glob of names`;
    const own = OWN_SETTINGS.find((o) => overlaps(pattern, o));
    if (own) return `"${pattern}" would pass plangate's own setting ${own} into plans; plangate's settings are never passed to projects`;
  }
  return envAllowlist(patterns);
}

export function envAllowlist(patterns: string[]): EnvAllowlist {
  const matchers = patterns.map((p) => picomatch(p, { dot: true }));
  return { patterns, allows: (name) => !isOwnSetting(name) && matchers.some((m) => m(name)) };
}
