import { CronExpressionParser } from "cron-parser";
import { z } from "zod";
import { compileRule, isProblem } from "./cel-rules.js";
import { unsafeDirReason } from "./dir-rules.js";

/** `.plangate.yml`: one source of truth for validation and for the published JSON Schema. */

const ACTIONS = ["create", "update", "replace", "destroy"] as const;

const approvals = z
  .strictObject({
    required: z.int().min(0).default(1).describe("Approvals needed from reviewers other than the PR author."),
    teams: z.array(z.string().min(1)).default([]).describe("When set, approvers must be members of one of these teams (slugs)."),
    users: z.array(z.string().min(1)).default([]).describe("When set, these users' approvals count (in addition to teams)."),
    destroy_required: z.int().min(0).optional().describe("Approvals needed when the plan destroys or replaces a resource (never fewer than required)."),
  })
  .describe("Who must approve before an apply.");

const autoplan = z
  .strictObject({
    enabled: z.boolean().default(true).describe("Plan automatically when the PR changes matching files."),
    when_modified: z.array(z.string().min(1)).optional().describe('Globs relative to the project dir; "../modules/**" reaches outside it.'),
  })
  .describe("When the project is planned without a /plan command.");

/** A five-field cron expression (minute hour day month weekday), in UTC. */
const cronSchedule = z.string().superRefine((text, ctx) => {
  if (text.trim().split(/\s+/).length !== 5) return void ctx.addIssue({ code: "custom", message: 'must be a cron expression of five fields, such as "0 6 * * *"' });
  try {
    CronExpressionParser.parse(text, { tz: "UTC" });
  } catch (error) {
    ctx.addIssue({ code: "custom", message: `is not a valid cron expression: ${(error as Error).message}` });
  }
});

const drift = z
  .strictObject({ schedule: cronSchedule.describe('When to plan the default branch for drift: cron, UTC, e.g. "0 6 * * *".') })
  .describe("Drift detection: plan the default branch on a schedule; a plan with changes opens a plangate:drift issue.");

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable name");
const audience = z.string().min(1).max(512).describe("The token's aud claim.");
const roleArn = z.string().regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/, "must be an IAM role ARN, such as arn:aws:iam::123456789012:role/plangate-plan");
const serviceAccount = z.string().regex(/^[a-z0-9-]+@[a-z0-9.-]+\.iam\.gserviceaccount\.com$/, "must be a service account email, such as plangate-plan@PROJECT.iam.gserviceaccount.com");
const clientId = z.string().regex(/^[0-9a-fA-F-]{36}$/, "must be an application (client) id, a GUID");

/** A value for both phases (`role_arn`), or one per phase (`plan_role_arn`, `apply_role_arn`): the phase's own wins. */
const bothPhases = (key: string) => (o: Record<string, unknown>) => o[key] !== undefined || (o[`plan_${key}`] !== undefined && o[`apply_${key}`] !== undefined);
const bothPhasesMessage = (key: string) => ({ message: `needs ${key}, or both plan_${key} and apply_${key}` });

const credentials = z
  .strictObject({
    aws: z
      .strictObject({
        role_arn: roleArn.optional().describe("The role both phases assume (a phase's own role wins)."),
        plan_role_arn: roleArn.optional().describe("The role every plan assumes (read-only, ideally)."),
        apply_role_arn: roleArn.optional().describe("The role an apply assumes."),
        audience: audience.default("sts.amazonaws.com"),
      })
      .refine(bothPhases("role_arn"), bothPhasesMessage("role_arn"))
      .describe("AWS: the role each phase assumes with its token (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE).")
      .optional(),
    gcp: z
      .strictObject({
        workload_identity_provider: z
          .string()
          .regex(/^\/\/iam\.googleapis\.com\/projects\/\d+\/locations\/global\/workloadIdentityPools\/[a-z0-9-]+\/providers\/[a-z0-9-]+$/, "must be //iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER")
          .describe("The workload identity pool provider that trusts plangate's issuer."),
        service_account: serviceAccount.optional().describe("The service account both phases impersonate (a phase's own wins)."),
        plan_service_account: serviceAccount.optional().describe("The service account every plan impersonates."),
        apply_service_account: serviceAccount.optional().describe("The service account an apply impersonates."),
        audience: audience.optional().describe("Default: https: followed by workload_identity_provider."),
      })
      .refine(bothPhases("service_account"), bothPhasesMessage("service_account"))
      .describe("GCP: an external_account credential (GOOGLE_APPLICATION_CREDENTIALS) that impersonates each phase's service account.")
      .optional(),
    azure: z
      .strictObject({
        tenant_id: clientId.describe("The Entra ID tenant (ARM_TENANT_ID)."),
        client_id: clientId.optional().describe("The application both phases sign in as (a phase's own wins)."),
        plan_client_id: clientId.optional().describe("The application every plan signs in as."),
        apply_client_id: clientId.optional().describe("The application an apply signs in as."),
        audience: audience.default("api://AzureADTokenExchange"),
      })
      .refine(bothPhases("client_id"), bothPhasesMessage("client_id"))
      .describe("Azure: ARM_USE_OIDC with each phase's client id.")
      .optional(),
    tokens: z
      .array(
        z.strictObject({
          audience,
          env: envName
            .refine((n) => !/^(PLANGATE_|AWS_|ARM_|GOOGLE_)/.test(n), "must not be a PLANGATE_, AWS_, ARM_ or GOOGLE_ variable")
            .optional()
            .describe("A variable that also holds the token itself (not a PLANGATE_, AWS_, ARM_ or GOOGLE_ name)."),
        }),
      )
      .optional()
      .describe("Bare tokens for anything else (e.g. Vault's JWT auth): a file each, PLANGATE_OIDC_TOKEN_FILE for the first, and the token in `env` if named."),
  })
  .refine((c) => c.aws || c.gcp || c.azure || c.tokens?.length, { message: "names no cloud: give aws, gcp, azure or tokens" })
  .describe("A short-lived identity per plan and apply, signed by plangate's OIDC issuer. Read from the base branch only.");

const projectName = z.string().regex(/^[A-Za-z0-9._/-]{1,200}$/, 'may hold only letters, digits, ".", "_", "-" and "/"');

/** One project; `engines`: what `engine:` accepts, the default first (the engine registry's names). */
const projectFor = (engines: EngineNames) =>
  z
    .strictObject({
      name: projectName.optional().describe("Unique name; defaults to the dir."),
      dir: z
        .string()
        .min(1)
        .superRefine((dir, ctx) => {
          const reason = unsafeDirReason(dir);
          if (reason) ctx.addIssue({ code: "custom", message: `dir ${reason}` });
        })
        .describe("The project's directory, relative to the repository root."),
      engine: z.enum(engines).default(engines[0]).describe(engines.join(" | ")),
      workspace: z.string().regex(/^[A-Za-z0-9._-]{1,90}$/, 'may hold only letters, digits, ".", "_" and "-"').default("default").describe("Terraform workspace."),
      autoplan: autoplan.default({ enabled: true }),
      apply: z.enum(["on_merge", "command", "both"]).default("on_merge").describe("on_merge (default) | command | both"),
      depends_on: z.array(projectName).default([]).describe("Projects applied before this one."),
      approvals: approvals.default({ required: 1, teams: [], users: [] }),
      env: z
        .array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable name"))
        .default([])
        .describe("Names of worker environment variables passed into the sandbox."),
      credentials: credentials.optional(),
      stacks: z.array(z.string().min(1)).optional().describe("cdktf only: plan just these stacks and the stacks they depend on."),
      drift: drift.optional(),
    })
    .describe("One planned and applied unit.");

/** The names of the engines a config may name, the default first (EngineRegistry.names). */
export type EngineNames = readonly [string, ...string[]];

const owners = z
  .strictObject({
    teams: z.array(z.string().min(1)).default([]).describe("Team slugs (or org/slug) whose members own the policy."),
    users: z.array(z.string().min(1)).default([]).describe("Users who own the policy."),
  })
  .describe("Who may /override a deny, and whose approvals a require_approval needs (write permission too; never the PR's author).");

/** One policy: the items of `policies:` in `.plangate.yml`, and of the organisation's `.plangate-policies.yml`. */
export const policySchema = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9._-]{1,100}$/, 'may hold only letters, digits, ".", "_" and "-"').optional().describe("Unique; named in comments and by /override. Required with rule."),
    rule: z.string().min(1).max(10_000).optional().describe("A CEL expression, true where the policy matches: per resource change (resource, project, pull_request, plan), or once per plan with scope: plan."),
    scope: z.enum(["resource", "plan"]).optional().describe("resource (default): the rule sees each resource change; plan: once per project plan, without resource."),
    effect: z.enum(["deny", "warn", "require_approval"]).optional().describe("deny (default): fails plangate/plan unless an owner overrides it; warn: shown only; require_approval: owners must approve."),
    message: z.string().max(2_000).optional().describe("Shown with each match."),
    owners: owners.optional(),
    approvals: z.int().min(1).max(20).optional().describe("require_approval: how many owners must approve (default 1)."),
    projects: z.array(z.string().min(1)).optional().describe("Globs of project names the policy applies to (default: all)."),
    deny: z.union([z.enum(ACTIONS), z.array(z.enum(ACTIONS)).min(1)]).optional().describe("Refuse plans with these actions (the short form)."),
    resource_types: z.array(z.string().min(1)).optional().describe("Limit the rule to these resource types (globs)."),
    addresses: z.array(z.string().min(1)).optional().describe("Limit the rule to these resource addresses (globs)."),
    max_changes: z.int().min(0).optional().describe("Refuse plans with more resource changes than this."),
    require_approvals: z.int().min(1).optional().describe("Matching changes need at least this many approvals."),
  })
  .superRefine((p, ctx) => {
    if (p.rule === undefined) {
      if ([p.deny, p.max_changes, p.require_approvals].filter((v) => v !== undefined).length !== 1) ctx.addIssue({ code: "custom", message: "a policy needs a rule, or exactly one of deny, max_changes or require_approvals" });
      for (const key of ["scope", "effect", "message", "owners", "approvals", "projects"] as const) if (p[key] !== undefined) ctx.addIssue({ code: "custom", path: [key], message: `${key} goes with rule` });
      return;
    }
    if (!p.name) ctx.addIssue({ code: "custom", path: ["rule"], message: "a policy with a rule needs a name" });
    for (const key of ["deny", "resource_types", "addresses", "max_changes", "require_approvals"] as const) if (p[key] !== undefined) ctx.addIssue({ code: "custom", path: [key], message: `${key} is the short form: a policy with a rule says it in CEL` });
    if (p.approvals !== undefined && p.effect !== "require_approval") ctx.addIssue({ code: "custom", path: ["approvals"], message: "approvals goes with effect: require_approval" });
    if (p.effect === "require_approval" && !(p.owners?.teams.length || p.owners?.users.length)) ctx.addIssue({ code: "custom", path: ["owners"], message: "require_approval needs owners (teams or users) to approve" });
    const compiled = compileRule(p.rule, p.scope ?? "resource");
    if (isProblem(compiled)) ctx.addIssue({ code: "custom", path: ["rule"], message: compiled.message, params: { ruleOffset: compiled.offset } });
  })
  .describe("A rule evaluated on every plan: a CEL rule with an effect, or the short form (deny, max_changes, require_approvals).");

/** Refuses a policy name given twice in one file's `policies:` (a name is what /override and the comment go by). */
export function policyNamesOnce(policies: { name?: string }[], ctx: z.RefinementCtx): void {
  const names = new Set<string>();
  policies.forEach((p, i) => {
    if (!p.name) return;
    if (names.has(p.name)) ctx.addIssue({ code: "custom", path: ["policies", i, "name"], message: `policy "${p.name}" is defined twice` });
    names.add(p.name);
  });
}

/**
 * The rule keys of a project that the base branch decides (DESIGN.md section 2,
 * "Who decides the rules"); also the shape of top-level `defaults:`.
 */
const ruleDefaults = z
  .strictObject({
    approvals: approvals.optional(),
    apply: z.enum(["on_merge", "command", "both"]).optional().describe("on_merge (default) | command | both"),
    depends_on: z.array(projectName).optional().describe("Projects applied before this one."),
    env: z
      .array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable name"))
      .optional()
      .describe("Names of worker environment variables passed into the sandbox (they must match PLANGATE_ENV_ALLOW)."),
    credentials: credentials.optional(),
    drift: drift.optional(),
  })
  .describe("Rules for projects the base branch's .plangate.yml does not list. Read from the base branch only.");

const schemas = new Map<string, ReturnType<typeof schemaFor>>();

/** The schema of `.plangate.yml` for these engines (built once per list). */
export function repoConfigSchema(engines: EngineNames) {
  const key = engines.join("\0");
  if (!schemas.has(key)) schemas.set(key, schemaFor(engines));
  return schemas.get(key)!;
}

const schemaFor = (engines: EngineNames) =>
  z
    .strictObject({
      version: z.literal(1, "must be 1").describe("Config format version."),
      projects: z.array(projectFor(engines)).default([]).describe("The projects; without this list every terraform and cdktf directory is one."),
      defaults: ruleDefaults.optional(),
      policies: z.array(policySchema).default([]).describe("Rules evaluated on every plan's JSON. The base branch's policies always apply; a pull request can only add more."),
      apply_branches: z
        .array(z.string().min(1))
        .optional()
        .describe("Branches besides the default branch whose merges apply. Read from the default branch only; a merge into any other branch applies nothing."),
    })
    .superRefine((config, ctx) => {
      const names = new Map<string, number>();
      config.projects.forEach((p, i) => {
        const name = `${p.name ?? p.dir}:${p.workspace}`;
        if (names.has(name)) ctx.addIssue({ code: "custom", path: ["projects", i, p.name ? "name" : "dir"], message: `project "${p.name ?? p.dir}" (workspace ${p.workspace}) is defined twice` });
        names.set(name, i);
      });
      policyNamesOnce(config.policies, ctx);
      const known = new Set(config.projects.map((p) => p.name ?? p.dir));
      config.projects.forEach((p, i) =>
        p.depends_on.forEach((d, j) => {
          if (!known.has(d)) ctx.addIssue({ code: "custom", path: ["projects", i, "depends_on", j], message: `depends_on names unknown project "${d}"` });
        }),
      );
    })
    .describe("plangate repository configuration (.plangate.yml)");

export type RawRepoConfig = z.output<ReturnType<typeof schemaFor>>;
export type ProjectConfig = Omit<RawRepoConfig["projects"][number], "name"> & {
  name: string;
  /** The dir with symlinks resolved in the commit it was read at (set by the loader): base rules match on it. */
  real_dir?: string;
};
/**
 * A policy as plans are judged by it. `source` is set by plangate, never read
 * from a repository's file (the schema refuses the key): "organisation" marks
 * the policies of PLANGATE_POLICY_REPO.
 */
export type PolicyConfig = RawRepoConfig["policies"][number] & { source?: "organisation" };
/** A project's `credentials`: the clouds its runs get a short-lived identity for. */
export type CredentialsConfig = NonNullable<RawRepoConfig["projects"][number]["credentials"]>;
export type RuleDefaults = NonNullable<RawRepoConfig["defaults"]>;

/** The validated config: every project has its name. */
export interface RepoConfig {
  projects: ProjectConfig[];
  policies: PolicyConfig[];
  /** Top-level `defaults:` (rule keys for projects the file does not list). */
  defaults?: RuleDefaults;
  /** Top-level `apply_branches:` (merges into these apply, besides the default branch). */
  apply_branches?: string[];
  /** False when no .plangate.yml exists. */
  fromFile: boolean;
  /** True when the projects are the file's list; false when they were discovered. */
  projectsListed: boolean;
}

/** The JSON Schema editors use; committed as plangate.schema.json and checked by a test. */
export function repoConfigJsonSchema(engines: EngineNames): object {
  return { ...z.toJSONSchema(repoConfigSchema(engines), { io: "input" }), $id: "https://plangate.dev/schema/plangate.schema.json" };
}
