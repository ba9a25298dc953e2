import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { jest } from "@jest/globals";
import { cdktfSynth, type SynthOutcome } from "../../src/engines/cdktf.js";
import { Sandbox } from "../../src/sandbox/sandbox.js";
import { terraformPlan } from "../../src/engines/terraform.js";
import { TerraformHomes } from "../../src/engines/terraform-home.js";
import { findBinary } from "../../src/settings/find-binary.js";
import { engineTest } from "../support/app-harness.js";

jest.setTimeout(120_000);

const sandbox = new Sandbox("bwrap");
const depsCacheDir = mkdtempSync(path.join(os.tmpdir(), "plangate-sec-deps-"));
const homesRoot = mkdtempSync(path.join(os.tmpdir(), "plangate-sec-tf-"));
chmodSync(homesRoot, 0o755); // as main.ts makes the data dir: the sandbox's user reaches the CLI config
const homes = new TerraformHomes(homesRoot);
const random = () => randomBytes(6).toString("hex");

/** A run folder as the worker's runs/<id> (plan artefacts go to out/<stack name>), with the PR's files checked out. */
function checkout(files: Record<string, string | { symlink: string }>): { root: string; checkoutDir: string } {
  const root = mkdtempSync(path.join(os.tmpdir(), "plangate-sec-run-"));
  chmodSync(root, 0o755);
  const checkoutDir = path.join(root, "checkout");
  for (const [file, content] of Object.entries(files)) {
    const full = path.join(checkoutDir, file);
    mkdirSync(path.dirname(full), { recursive: true });
    if (typeof content === "string") writeFileSync(full, content);
    else symlinkSync(content.symlink, full);
  }
  return { root, checkoutDir };
}

/**
 * A cdktf "program" with no npm dependencies at all (no package.json): plain
 * node writing one stack and the manifest it is given, then running `extra`.
 */
function program(manifest: unknown, extra = ""): Record<string, string> {
  const main = `const fs = require("node:fs"), path = require("node:path");
const out = process.env.CDKTF_OUTDIR;
fs.mkdirSync(path.join(out, "stacks", "web"), { recursive: true });
fs.writeFileSync(path.join(out, "stacks", "web", "cdk.tf.json"), JSON.stringify({ resource: { terraform_data: { x: { input: "web" } } } }));
fs.writeFileSync(path.join(out, "manifest.json"), ${JSON.stringify(JSON.stringify(manifest))});
${extra}
`;
  return { "app/cdktf.json": JSON.stringify({ language: "javascript", app: "node main.js" }), "app/main.js": main };
}

const manifestOf = (name: string, workingDirectory: string) => ({ version: "0.21.0", stacks: { [name]: { name, constructPath: name, workingDirectory, synthesizedStackPath: `${workingDirectory}/cdk.tf.json`, dependencies: [] } } });

/** What the worker does after a synth: plan each stack with its artefacts under out/<stack name>. */
async function synthAndPlan(root: string, checkoutDir: string): Promise<SynthOutcome> {
  const synth = await cdktfSynth({ sandbox, checkoutDir, projectDir: "app", env: {}, timeoutMs: 60_000, depsCacheDir });
  if (!synth.ok) return synth;
  const { home } = await homes.acquire();
  for (const stack of synth.stacks) {
    const outDir = path.join(root, "out", stack.name);
    mkdirSync(outDir, { recursive: true });
    const planned = await terraformPlan({ sandbox, bin: findBinary("terraform") ?? "terraform", tool: "terraform", home, checkoutDir, projectDir: stack.dir, workspace: "default", env: {}, timeoutMs: 60_000, outDir });
    if (!planned.ok) throw new Error(`plan of ${stack.name} failed: ${planned.output}`);
  }
  return synth;
}

/** Every window of `size` characters of text (to show that no piece of a file reaches a message). */
const windows = (text: string, size = 8) => Array.from({ length: Math.max(0, text.length - size + 1) }, (_, i) => text.slice(i, i + size)).filter((w) => w.trim().length === size);

describe("paths that come out of the sandbox", () => {
  engineTest("a well-formed program without package.json synthesizes and plans", async () => {
    const { root, checkoutDir } = checkout(program(manifestOf("web", "stacks/web")));
    const synth = await synthAndPlan(root, checkoutDir);
    expect(synth).toMatchObject({ ok: true, stacks: [{ name: "web", dir: ".plangate-cdktf.out/stacks/web" }] });
    expect(existsSync(path.join(root, "out", "web", "plan.json"))).toBe(true);
  });

  engineTest("a stack name that climbs out of the run folder is refused, and nothing is written there", async () => {
    const target = `plangate-escape-${random()}`;
    const name = `../../../../tmp/${target}`;
    const { root, checkoutDir } = checkout(program(manifestOf(name, "stacks/web")));
    const synth = await synthAndPlan(root, checkoutDir);

    expect(synth).toMatchObject({ ok: false, stage: "synth" });
    expect(!synth.ok && synth.message).toBe(`manifest.json: stack name "${name}" is refused: a stack name is 1 to 100 letters, digits, ".", "_" or "-", starting with a letter or digit`);
    expect(existsSync(path.join("/tmp", target))).toBe(false);
    expect(existsSync(path.join(root, "out"))).toBe(false);
  });

  const escapes: [string, (target: string) => string, string][] = [
    ["climbs out with ..", (target) => `../../../../../../tmp/${target}`, "main.js"],
    ["is absolute", (target) => `/tmp/${target}`, "main.js"],
    ["is a link out of the synth's output", () => "stacks/out", 'fs.symlinkSync("/tmp", path.join(out, "stacks", "out"));'],
  ];
  for (const [what, workingDirectory, extra] of escapes) {
    engineTest(`a stack whose workingDirectory ${what} is refused`, async () => {
      const target = `plangate-escape-${random()}`;
      const dir = workingDirectory(target);
      const { root, checkoutDir } = checkout(program(manifestOf("web", dir), extra === "main.js" ? "" : extra));
      const synth = await synthAndPlan(root, checkoutDir);

      expect(synth).toMatchObject({ ok: false, stage: "synth" });
      expect(!synth.ok && synth.message).toBe(`manifest.json: stack web has workingDirectory "${dir}", which is refused: it must be a folder under the synth's output folder`);
      expect(existsSync(path.join("/tmp", target))).toBe(false);
    });
  }
});

describe("host reads of files a pull request controls", () => {
  const secretFile = () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), "plangate-sec-secret-")), "shadow");
    writeFileSync(file, `root:SECRET-${random()}:19000:0:99999:7:::\nadmin:$6$saltsalt$${random()}${random()}:19000:0:99999:7:::\n`);
    return file;
  };

  for (const [what, target] of [
    ["a host file with a secret", secretFile],
    ["/etc/shadow", () => "/etc/shadow"],
  ] as const) {
    engineTest(`cdktf.json as a link to ${what} is refused without echoing a byte of it`, async () => {
      const file = target();
      const { root, checkoutDir } = checkout({ ...program(manifestOf("web", "stacks/web")), "app/cdktf.json": { symlink: file } });
      const synth = await synthAndPlan(root, checkoutDir);

      expect(synth).toMatchObject({ ok: false, stage: "synth" });
      const shown = !synth.ok ? `${synth.message}\n${synth.output}` : "";
      expect(shown).toContain("cdktf.json cannot be read: cdktf.json is a symbolic link: plangate does not follow links in the workspace");
      for (const piece of windows(readFileSync(file, "utf8"))) expect(shown).not.toContain(piece);
    });
  }

  engineTest("manifest.json written as a link to a host file is refused (the host never reads the file)", async () => {
    const hostFile = path.join(mkdtempSync(path.join(os.tmpdir(), "plangate-sec-host-")), "manifest.json");
    const leak = `leaked-${random()}`;
    writeFileSync(hostFile, JSON.stringify(manifestOf(leak, "stacks/web")));
    const { root, checkoutDir } = checkout(program(manifestOf("web", "stacks/web"), `fs.rmSync(path.join(out, "manifest.json")); fs.symlinkSync(${JSON.stringify(hostFile)}, path.join(out, "manifest.json"));`));
    const synth = await synthAndPlan(root, checkoutDir);

    expect(synth).toMatchObject({ ok: false, stage: "synth", message: "manifest.json is a symbolic link: plangate does not follow links in the workspace" });
    expect(JSON.stringify(synth)).not.toContain(leak);
    rmSync(path.dirname(hostFile), { recursive: true, force: true });
  });

  engineTest("a cdktf.json that is not JSON fails naming the file and a position, never quoting its text", async () => {
    const secret = `SECRET-${random()}`;
    const { root, checkoutDir } = checkout({ ...program(manifestOf("web", "stacks/web")), "app/cdktf.json": `${secret} { "app": "node main.js" }` });
    const synth = await synthAndPlan(root, checkoutDir);

    expect(synth).toMatchObject({ ok: false, stage: "synth" });
    expect(!synth.ok && synth.message).toMatch(/^cdktf\.json cannot be read: cdktf\.json is not valid JSON( \(error at character \d+\))?$/);
    for (const piece of windows(secret, 6)) expect(JSON.stringify(synth)).not.toContain(piece);
  });
});
