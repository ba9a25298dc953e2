import { readFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { ENGINES } from "../engines/registry.js";
import { parsePlanChanges, type PlanChanges } from "../plans/changes.js";
import type { PolicyContext } from "../plans/cel-policy.js";
import { denies, policyResults } from "../plans/policy-results.js";
import { loadTemplates } from "../render/templates.js";
import { CONFIG_FILE, loadRepoConfig } from "../settings/load-repo-config.js";
import { loadPolicyFile, POLICY_FILE } from "../settings/policy-file.js";
import type { PolicyConfig, ProjectConfig } from "../settings/repo-config.js";
import { inertTerminal } from "../text/terminal-text.js";
import { policyReportText } from "./policy-report.js";

export const POLICY_TEST_USAGE = `usage: plangate policy test PLAN.json [--config FILE] [--project NAME] [--label NAME]… [--author USER] [--drift]

  PLAN.json        a plan as \`terraform show -json PLANFILE\` writes it
  --config FILE    .plangate.yml (default: the one in the current directory), or a
                   ${POLICY_FILE} holding only policies:
  --project NAME   judge the plan as this project's (policies' projects: globs; default "local",
                   or the config's only project)
  --label NAME     a label of the pull request (pull_request.labels); repeat for more
  --author USER    the pull request's author (pull_request.author; default "local")
  --drift          judge as a drift check: pull_request is null
Exit status: 0 no deny matched; 1 a deny matched or a rule could not be evaluated; 2 bad input.
`;

/** A config's policies and projects, from `.plangate.yml` or a policy file; problems at FILE:LINE:COLUMN. */
export async function readPolicies(file: string): Promise<{ ok: true; policies: PolicyConfig[]; projects: ProjectConfig[] } | { ok: false; problems: string[] }> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    return { ok: false, problems: [`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`] };
  }
  if (/^\.plangate-policies\.ya?ml$/.test(path.basename(file))) {
    const loaded = loadPolicyFile(text, file);
    return loaded.ok ? { ok: true, policies: loaded.policies, projects: [] } : { ok: false, problems: loaded.problems.map((p) => `${p.where}: ${p.message}`) };
  }
  const loaded = loadRepoConfig(text, ENGINES.names);
  if (!loaded.ok) return { ok: false, problems: loaded.problems.map((p) => `${file}:${p.line}:${p.column}: ${p.message}`) };
  return { ok: true, policies: loaded.config.policies, projects: loaded.config.projects };
}

/** A `terraform show -json` plan from a file, parsed as plangate parses every plan. */
async function readPlan(file: string): Promise<{ ok: true; changes: PlanChanges } | { ok: false; problem: string }> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, "utf8"));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { ok: false, problem: code ? `cannot read ${file}: ${code}` : `${file} is not JSON: ${(error as Error).message}` };
  }
  const plan = json as { format_version?: unknown; resource_changes?: unknown } | null;
  if (!plan || typeof plan !== "object" || Array.isArray(plan) || typeof plan.format_version !== "string" || (plan.resource_changes !== undefined && !Array.isArray(plan.resource_changes))) {
    return { ok: false, problem: `${file} is not a plan as \`terraform show -json\` writes it (no format_version, or resource_changes is not a list)` };
  }
  try {
    return { ok: true, changes: parsePlanChanges(json) };
  } catch (error) {
    return { ok: false, problem: `${file} could not be read as a plan: ${(error as Error).message}` };
  }
}

/**
 * `plangate policy test PLAN.json [--config FILE]`: every policy's result on
 * a plan, evaluated as a pull request's plan is. Returns the exit code.
 */
export async function policyTest(args: string[], print: (text: string) => void, warn: (text: string) => void, templatesDir?: string): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: { help: { type: "boolean", short: "h" }, config: { type: "string" }, project: { type: "string" }, label: { type: "string", multiple: true }, author: { type: "string" }, drift: { type: "boolean" } },
    });
  } catch (error) {
    warn(`plangate policy test: ${inertTerminal((error as Error).message)}\n\n${POLICY_TEST_USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    print(POLICY_TEST_USAGE.trimEnd());
    return 0;
  }
  if (positionals.length !== 1) {
    warn(`plangate policy test: ${positionals.length ? "give one plan file" : "which plan? give PLAN.json"}\n\n${POLICY_TEST_USAGE}`);
    return 2;
  }
  const planFile = positionals[0]!;
  const configFile = values.config ?? CONFIG_FILE;
  const config = await readPolicies(configFile);
  if (!config.ok) {
    warn(config.problems.map((p) => `plangate policy test: ${inertTerminal(p)}`).join("\n"));
    return 2;
  }
  const plan = await readPlan(planFile);
  if (!plan.ok) {
    warn(`plangate policy test: ${inertTerminal(plan.problem)}`);
    return 2;
  }
  const listed = values.project !== undefined ? config.projects.find((p) => p.name === values.project) : config.projects.length === 1 ? config.projects[0] : undefined;
  const context: PolicyContext = {
    project: { name: values.project ?? listed?.name ?? "local", dir: listed?.dir ?? ".", workspace: listed?.workspace ?? "default", engine: listed?.engine ?? ENGINES.names[0] },
    pull_request: values.drift ? null : { number: 1, author: values.author ?? "local", labels: values.label ?? [], base: "main", head_sha: "0".repeat(40) },
  };
  const results = policyResults(config.policies, plan.changes, context);
  const templates = await loadTemplates(templatesDir);
  const { counts } = plan.changes;
  print(policyReportText(templates, { planFile, counts, changes: plan.changes.resources.length, configFile, project: context.project.name, drift: !!values.drift, results }).trimEnd());
  return results.some(denies) ? 1 : 0;
}
