import type { ConfigProblem } from "./load-repo-config.js";
import { loadPolicyFile, POLICY_FILE } from "./policy-file.js";
import type { PolicyConfig } from "./repo-config.js";

/** The organisation's policies: this file on the default branch of PLANGATE_POLICY_REPO (DESIGN.md section 2). */
export const ORG_POLICY_FILE = POLICY_FILE;

export type OrgPolicyFileResult = { ok: true; policies: PolicyConfig[] } | { ok: false; problems: ConfigProblem[] };

/**
 * Parses and validates `.plangate-policies.yml` as `.plangate.yml`'s
 * `policies:` are (CEL rules compiled, problems at their line and column);
 * each policy comes back marked `source: "organisation"`.
 */
export function loadOrgPolicyFile(text: string): OrgPolicyFileResult {
  const loaded = loadPolicyFile(text, ORG_POLICY_FILE);
  if (!loaded.ok) return { ok: false, problems: loaded.problems.map(({ where: _where, ...problem }) => problem) };
  return { ok: true, policies: loaded.policies.map((p) => ({ ...p, source: "organisation" as const })) };
}
