import { z } from "zod";
import { loadYamlFile, type ConfigProblem } from "./load-repo-config.js";
import { policyNamesOnce, policySchema, type PolicyConfig } from "./repo-config.js";

/** The organisation's policies: this file on the default branch of PLANGATE_POLICY_REPO (DESIGN.md section 2). */
export const ORG_POLICY_FILE = ".plangate-policies.yml";

const orgPolicyFileSchema = z
  .strictObject({
    version: z.literal(1, "must be 1").optional().describe("File format version."),
    policies: z.array(policySchema, "must be a list of policies (the same as .plangate.yml's policies:)").describe("The same list as .plangate.yml's policies: added to every repository's own."),
  })
  .superRefine((file, ctx) => policyNamesOnce(file.policies, ctx))
  .describe("plangate organisation policies (.plangate-policies.yml)");

export type OrgPolicyFileResult = { ok: true; policies: PolicyConfig[] } | { ok: false; problems: ConfigProblem[] };

/**
 * Parses and validates `.plangate-policies.yml` as `.plangate.yml`'s
 * `policies:` are (CEL rules compiled, problems at their line and column);
 * each policy comes back marked `source: "organisation"`.
 */
export function loadOrgPolicyFile(text: string): OrgPolicyFileResult {
  const parsed = loadYamlFile(text, orgPolicyFileSchema);
  if (!parsed.ok) return parsed;
  return { ok: true, policies: parsed.data.policies.map((p) => ({ ...p, source: "organisation" as const })) };
}
