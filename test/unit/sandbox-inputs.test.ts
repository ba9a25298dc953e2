import { ENGINES } from "../../src/engines/registry.js";
import { sandboxInputs } from "../../src/run/sandbox-inputs.js";
import { envAllowlist } from "../../src/settings/env-allow.js";

/** What enters the sandbox, decided in one place for every phase and reason (src/run/sandbox-inputs.ts). */
const policy = { envAllow: envAllowlist(["AWS_REGION", "TF_VAR_*"]), applyEnvAllow: envAllowlist(["AWS_SECRET_ACCESS_KEY"]) };
const worker = { AWS_REGION: "eu-west-1", TF_VAR_size: "3", AWS_SECRET_ACCESS_KEY: "s3cr3t", PLANGATE_ENCRYPTION_KEY: "k", UNLISTED: "x" };
const terraform = ENGINES.named("terraform");
const cdktf = ENGINES.named("cdktf");
const project = { dir: "infra", env: ["AWS_REGION", "TF_VAR_size", "AWS_SECRET_ACCESS_KEY"] };

describe("sandboxInputs", () => {
  test("a plan gets the plan allowlist's values only; an apply also the apply-only ones", () => {
    const plan = sandboxInputs(policy, terraform, project, "plan", "pull_request", worker);
    expect(plan).toEqual({ ok: true, inputs: { phase: "plan", reason: "pull_request", env: { AWS_REGION: "eu-west-1", TF_VAR_size: "3" }, writable: ["infra"], egress: "allowlist" } });
    const apply = sandboxInputs(policy, terraform, project, "apply", "merge", worker);
    expect(apply.ok && apply.inputs.env).toEqual({ AWS_REGION: "eu-west-1", TF_VAR_size: "3", AWS_SECRET_ACCESS_KEY: "s3cr3t" });
  });

  test("a merge queue's plan is planned as it will be applied: the apply phase's env", () => {
    const queue = sandboxInputs(policy, terraform, project, "apply", "merge_group", worker);
    expect(queue.ok && Object.keys(queue.inputs.env)).toContain("AWS_SECRET_ACCESS_KEY");
  });

  test("a name no allowlist allows, or one of plangate's own settings, fails the run naming it", () => {
    expect(sandboxInputs(policy, terraform, { dir: "infra", env: ["UNLISTED"] }, "plan", "drift", worker)).toEqual({
      ok: false,
      message: "env UNLISTED is not allowed: the operator must add it to PLANGATE_ENV_ALLOW (or to PLANGATE_APPLY_ENV_ALLOW for applies only)",
    });
    expect(sandboxInputs(policy, terraform, { dir: "infra", env: ["PLANGATE_ENCRYPTION_KEY"] }, "apply", "command", worker)).toMatchObject({ ok: false, message: expect.stringContaining("one of plangate's own settings") });
  });

  test("the writable folders are the project's and its engine's, nothing else", () => {
    const program = sandboxInputs(policy, cdktf, { dir: "app", env: [] }, "plan", "pull_request", worker);
    expect(program.ok && program.inputs.writable).toEqual(["app", ".plangate-cdktf.out"]);
    expect(program.ok && program.inputs.env).toEqual({});
  });
});
