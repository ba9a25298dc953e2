import { chmodSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execute } from "../../src/sandbox/exec.js";
import { Sandbox } from "../../src/sandbox/sandbox.js";
import { waitFor } from "../support/app-harness.js";
import { ManualClock } from "../support/manual-clock.js";
import { leftAfterKill, processesNamed } from "../support/processes.js";
import { nestedWorkspace, sandboxTest, workspaces } from "../support/sandbox.js";

const APP_SECRETS = {
  WEBHOOK_SECRET: "whsec-should-not-leak",
  PRIVATE_KEY: "-----BEGIN RSA PRIVATE KEY-----should-not-leak",
  DATABASE_URL: "postgres://secret-user:secret-pass@db/plangate",
  PLANGATE_ENCRYPTION_KEY: "ab".repeat(32),
};

const workspace = workspaces("plangate-sandbox-");

describe("sandbox (bubblewrap)", () => {
  sandboxTest("a bubblewrap runs inside the sandbox here, as its user: a large PR's projects can be planned together; without bubblewrap they cannot", async () => {
    expect(await new Sandbox("bwrap").nests()).toBe(true);
    expect(await new Sandbox("none").nests()).toBe(false);
  });

  const original = { ...process.env };
  beforeAll(() => Object.assign(process.env, APP_SECRETS));
  afterAll(() => {
    for (const key of Object.keys(APP_SECRETS)) delete process.env[key];
    Object.assign(process.env, original);
  });

  sandboxTest("a program sees neither the app's secrets nor files outside its workspace", async () => {
    const outside = path.join(workspace(), "app-private-key.pem");
    writeFileSync(outside, "TOP-SECRET-KEY-MATERIAL");
    chmodSync(outside, 0o644); // readable by anyone on the host: only the sandbox keeps it away
    const work = workspace();
    const result = await new Sandbox("bwrap").run({
      command: ["/bin/sh", "-c", `env; echo "---"; cat ${outside} || echo "cannot read outside file"; ls /work /root 2>&1; echo done`],
      workDir: work,
      network: false,
      env: { ALLOWED: "yes" },
      timeoutMs: 20_000,
    });
    expect(result.exitCode).toBe(0);
    expect(result.output).toContain("ALLOWED=yes");
    expect(result.output).toContain("cannot read outside file");
    expect(result.output).not.toContain("TOP-SECRET-KEY-MATERIAL");
    for (const [name, value] of Object.entries(APP_SECRETS)) {
      expect(result.output).not.toContain(name);
      expect(result.output).not.toContain(value);
    }
    expect(result.output).toContain("done");
  });

  sandboxTest("the workspace is writable and the rest of the filesystem is not", async () => {
    const work = workspace();
    const result = await new Sandbox("bwrap").run({
      command: ["/bin/sh", "-c", "echo ok > here.txt && cat here.txt; touch /usr/evil 2>&1 || echo usr-read-only"],
      workDir: work,
      network: false,
      env: {},
      timeoutMs: 20_000,
    });
    expect(result.output).toContain("ok");
    expect(result.output).toContain("usr-read-only");
  });

  sandboxTest("without network only loopback exists", async () => {
    const result = await new Sandbox("bwrap").run({
      command: ["/bin/sh", "-c", "ls /sys/class/net 2>/dev/null || cat /proc/net/dev"],
      workDir: workspace(),
      network: false,
      env: {},
      timeoutMs: 20_000,
    });
    expect(result.output).toContain("lo");
    expect(result.output).not.toMatch(/eth0|ens\d|enp\d/);
  });

  sandboxTest("a program over its time limit is killed together with its children", async () => {
    const marker = `9${Math.floor(Math.random() * 1e6)}`;
    const clock = new ManualClock();
    const running = new Sandbox("bwrap", { clock }).run({
      command: ["/bin/sh", "-c", `sleep ${marker} & sleep ${marker} & wait`],
      workDir: workspace(),
      network: false,
      env: {},
      timeoutMs: 1500,
    });
    // The time limit passes once both children run: what is tested is that they go with the program.
    await waitFor("both children to run", () => sleeping(marker) === 2, 30_000);
    clock.advance(1500);
    const result = await running;
    expect(result.timedOut).toBe(true);
    expect(await leftAfterKill(`sleep ${marker}`)).toEqual([]);
  });
});

/** How many `sleep <marker>` processes run (not counting the shell whose command line names them). */
const sleeping = (marker: string) => processesNamed(`sleep ${marker}`).filter((l) => l.startsWith("sleep ")).length;

describe("a sandboxed program's output (captured through a file, not a pipe)", () => {
  sandboxTest("huge output is capped to its head and tail, stdout and stderr in the order written; the capture file is gone", async () => {
    const work = nestedWorkspace(workspace);
    const result = await new Sandbox("bwrap").run({
      command: ["/bin/sh", "-c", "echo FIRST-LINE; echo TO-STDERR >&2; seq 1 700000; echo LAST-LINE >&2"],
      workDir: work,
      network: false,
      env: {},
      timeoutMs: 20_000,
      maxOutputBytes: 64 * 1024,
    });
    expect(result.exitCode).toBe(0);
    expect(result.output.startsWith("FIRST-LINE\nTO-STDERR\n1\n2\n")).toBe(true);
    expect(result.output.endsWith("700000\nLAST-LINE\n")).toBe(true);
    expect(result.output).toMatch(/\[\.\.\. \d+ bytes of output omitted \.\.\.\]/);
    expect(result.output.length).toBeLessThan(70 * 1024);
    expect(result.droppedBytes).toBeGreaterThan(4_500_000);
    expect(readdirSync(path.dirname(work)).filter((f) => f.startsWith(".plangate-output-"))).toEqual([]);
  });

  sandboxTest("links planted in the workspace (by the PR or an earlier run) never become the output file: the host file stays whole and unread", async () => {
    const secret = path.join(workspace(), "host-secret.txt");
    writeFileSync(secret, "HOST-FILE-CONTENT");
    chmodSync(secret, 0o600); // plangate (root) could open it through a link; the sandbox cannot
    const work = nestedWorkspace(workspace);
    mkdirSync(path.join(work, ".home"), { recursive: true });
    for (const planted of [".plangate-output", ".home/.plangate-output", "output"]) symlinkSync(secret, path.join(work, planted));
    const result = await new Sandbox("bwrap").run({
      // Also looks for a capture file it could swap while it runs.
      command: ["/bin/sh", "-c", `echo mine; find / -xdev -name 'output' -newer /etc/hostname 2>/dev/null | grep -v '^/proc' | head -3; echo done`],
      workDir: work,
      network: false,
      env: {},
      timeoutMs: 20_000,
    });
    expect(result.output.split("\n")[0]).toBe("mine");
    expect(result.output).toContain("done");
    expect(result.output).not.toContain("HOST-FILE-CONTENT");
    expect(readFileSync(secret, "utf8")).toBe("HOST-FILE-CONTENT");
    // Nothing of the capture is left beside the workspace.
    expect(readdirSync(path.dirname(work)).filter((f) => f.startsWith(".plangate-output-"))).toEqual([]);
  });
});

describe("a sandboxed program's inherited descriptors", () => {
  sandboxTest("a program that floods the descriptor marking the run's end still ends when it is done", async () => {
    const result = await new Sandbox("bwrap").run({
      // fd 3: the idle pipe every process of the run inherits (no fdFiles here).
      command: ["/bin/sh", "-c", "head -c 1000000 /dev/zero >&3; echo finished"],
      workDir: workspace(),
      network: false,
      env: {},
      timeoutMs: 15_000,
    });
    expect(result.timedOut).toBe(false);
    expect(result.exitCode).toBe(0);
    expect(result.output).toBe("finished\n");
  }, 30_000);
});

describe("exec without a sandbox", () => {
  test("the environment is exactly what was passed", async () => {
    process.env.WEBHOOK_SECRET = APP_SECRETS.WEBHOOK_SECRET;
    const result = await execute({ argv: ["/usr/bin/env"], cwd: os.tmpdir(), env: { ONLY: "this" }, timeoutMs: 10_000 });
    delete process.env.WEBHOOK_SECRET;
    expect(result.output.trim()).toBe("ONLY=this");
  });

  test("huge output is capped, keeping its head and tail", async () => {
    const result = await execute({
      argv: ["/bin/sh", "-c", "echo FIRST-LINE; head -c 5000000 /dev/zero | tr '\\0' 'x'; echo; echo LAST-LINE"],
      cwd: os.tmpdir(),
      env: { PATH: "/usr/bin:/bin" },
      timeoutMs: 30_000,
      maxOutputBytes: 64 * 1024,
    });
    expect(result.exitCode).toBe(0);
    expect(result.output.length).toBeLessThan(70 * 1024);
    expect(result.output).toContain("FIRST-LINE");
    expect(result.output).toContain("LAST-LINE");
    expect(result.output).toMatch(/\[\.\.\. \d+ bytes of output omitted \.\.\.\]/);
    expect(result.droppedBytes).toBeGreaterThan(4_900_000);
  });

  test("the whole process group is killed on timeout", async () => {
    const marker = `8${Math.floor(Math.random() * 1e6)}`;
    const clock = new ManualClock();
    const running = execute({ argv: ["/bin/sh", "-c", `sleep ${marker} & sleep ${marker}`], cwd: os.tmpdir(), env: { PATH: "/usr/bin:/bin" }, timeoutMs: 1000, clock });
    await waitFor("both sleeps to run", () => sleeping(marker) === 2, 30_000);
    clock.advance(1000);
    expect((await running).timedOut).toBe(true);
    expect(await leftAfterKill(`sleep ${marker}`)).toEqual([]);
  });

  test("a program that ends in time cancels its timeout", async () => {
    const clock = new ManualClock();
    const result = await execute({ argv: ["/bin/true"], cwd: os.tmpdir(), env: {}, timeoutMs: 1000, clock });
    expect(result).toMatchObject({ exitCode: 0, timedOut: false });
    expect(clock.scheduled).toBe(0);
  });
});
