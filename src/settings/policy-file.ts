import { z } from "zod";
import { loadYamlFile, type ConfigProblem } from "./load-repo-config.js";
import { policyNamesOnce, policySchema, type PolicyConfig } from "./repo-config.js";

/** A file of policies alone (`.plangate-policies.yml`, the organisation's format): `policies:`, the same list as `.plangate.yml`'s. */
export const POLICY_FILE = ".plangate-policies.yml";

export const policyFileSchema = z
  .strictObject({
    version: z.literal(1, "must be 1").optional().describe("File format version."),
    policies: z.array(policySchema, "must be a list of policies (the same as .plangate.yml's policies:)").describe("The same list as .plangate.yml's policies:."),
  })
  .superRefine((file, ctx) => policyNamesOnce(file.policies, ctx))
  .describe("plangate policies (.plangate-policies.yml)");

/** A problem of the file, with the place a reader goes to: `FILE:LINE:COLUMN`. */
export type PolicyFileProblem = ConfigProblem & { where: string };

export type PolicyFileResult = { ok: true; policies: PolicyConfig[] } | { ok: false; problems: PolicyFileProblem[] };

/**
 * Parses and validates a policy file (`fileName` names it in each problem's
 * place): its CEL rules are compiled, as `.plangate.yml`'s are, and every
 * problem comes back as data at its line and column.
 */
export function loadPolicyFile(text: string, fileName: string): PolicyFileResult {
  const parsed = loadYamlFile(text, policyFileSchema);
  if (!parsed.ok) return { ok: false, problems: parsed.problems.map((p) => ({ ...p, where: `${fileName}:${p.line}:${p.column}` })) };
  return { ok: true, policies: parsed.data.policies };
}
