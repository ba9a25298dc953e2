import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import path from "node:path";
import { diskUsage } from "../../src/sandbox/disk-watch.js";
import { capSettings, DEFAULT_CAPS, SandboxCaps } from "../../src/sandbox/limits.js";
import { Sandbox } from "../../src/sandbox/sandbox.js";
import { readSettings } from "../../src/settings/settings.js";
import { leftAfterKill } from "../support/processes.js";
import { nestedWorkspace, sandboxTest, workspaces } from "../support/sandbox.js";

/**
 * The hostile PR author's resource attacks: a fork bomb, a disk filler and a
 * memory hog, each run in the real sandbox with a small cap. Every attack is
 * bounded (2,000 processes, 1 GiB of memory or disk) so that without the caps
 * it cannot harm the machine: it then simply succeeds, and the test fails.
 */
const MiB = 1024 ** 2;

const workspace = workspaces("plangate-caps-");

/** A sandbox whose caps come from the settings an operator would type. */
function sandboxWith(env: Record<string, string>): Sandbox {
  return new Sandbox("bwrap", { caps: new SandboxCaps(capSettings(readSettings(env))) });
}

describe("sandbox caps", () => {
  test("the start log can say how each cap is enforced here", () => {
    const { mechanism } = new SandboxCaps(DEFAULT_CAPS);
    expect(mechanism.summary).toMatch(/^(cgroup v2|cgroup v1|rlimits)( \+ rlimits)?$/);
    expect(mechanism.pids).toMatch(/pids\.max|RLIMIT_NPROC/);
    expect(mechanism.memory).toMatch(/memory\.(max|limit_in_bytes)|RLIMIT_AS/);
    expect(mechanism.cpu).toMatch(/^cgroup v[12] cpu\.(shares|weight)$|^none \(/);
  });

  sandboxTest("a fork bomb stops at PLANGATE_SANDBOX_PIDS and leaves no process behind", async () => {
    const marker = `7${Math.floor(Math.random() * 1e6)}`;
    const result = await sandboxWith({ PLANGATE_SANDBOX_PIDS: "64" }).run({
      command: ["/usr/bin/bash", "-c", `for i in $(seq 2000); do sleep ${marker} & done; wait`],
      workDir: workspace(),
      network: false,
      env: {},
      timeoutMs: 60_000,
    });
    // Stopped by the cap, not by the time limit (the bomb's `wait` would otherwise wait for its sleeps for ever).
    expect(result.timedOut).toBe(false);
    expect(result.exitCode).not.toBe(0);
    expect(result.problems).toEqual(["exceeded PLANGATE_SANDBOX_PIDS (64 processes)"]);
    expect(await leftAfterKill(`sleep ${marker}`)).toEqual([]);
  }, 90_000);

  sandboxTest("a disk filler stops at PLANGATE_SANDBOX_DISK, long before the 1 GiB it would write", async () => {
    const work = workspace();
    const result = await sandboxWith({ PLANGATE_SANDBOX_DISK: "64m" }).run({
      command: ["/bin/sh", "-c", "i=0; while [ $i -lt 1024 ]; do head -c 1048576 /dev/zero > fill-$i || exit 1; i=$((i+1)); done"],
      workDir: work,
      network: false,
      env: {},
      timeoutMs: 60_000,
    });
    expect(result.exitCode).not.toBe(0);
    expect(result.problems).toEqual(["exceeded PLANGATE_SANDBOX_DISK (64 MiB): the workspace grew past it"]);
    // The watch polls (no cgroup disk limit here): on a loaded machine a late timer lets a fast filler past the cap by a few
    // hundred MiB (seen: 298 MiB over a 64 MiB cap while the suite ran two files at once), never to the end of its 1 GiB.
    expect(await diskUsage(work)).toBeLessThan(8 * 64 * MiB);
  }, 90_000);

  sandboxTest("a flood of output (captured in a file beside the workspace) counts against PLANGATE_SANDBOX_DISK too", async () => {
    const work = nestedWorkspace(workspace);
    const result = await sandboxWith({ PLANGATE_SANDBOX_DISK: "64m" }).run({
      // 1 MiB lines, slowly enough for the watch to see the cap pass before RLIMIT_FSIZE would stop a single file.
      command: ["/bin/sh", "-c", "i=0; while [ $i -lt 1024 ]; do head -c 1048576 /dev/zero | tr '\\0' x; echo; i=$((i+1)); done"],
      workDir: work,
      network: false,
      env: {},
      timeoutMs: 60_000,
      maxOutputBytes: 64 * 1024,
    });
    expect(result.exitCode).not.toBe(0);
    expect(result.problems).toEqual(["exceeded PLANGATE_SANDBOX_DISK (64 MiB): the workspace grew past it"]);
    expect(result.output.length).toBeLessThan(70 * 1024);
    expect(readdirSync(path.dirname(work))).toEqual(["checkout"]); // the capture is gone
  }, 90_000);

  sandboxTest("the sandbox's /tmp holds no more than PLANGATE_SANDBOX_DISK", async () => {
    const result = await sandboxWith({ PLANGATE_SANDBOX_DISK: "64m" }).run({
      // Files of 40 MiB each: no single one reaches the cap, together they would fill 160 MiB.
      command: ["/bin/sh", "-c", "for i in 1 2 3 4; do head -c 41943040 /dev/zero > /tmp/big-$i || failed=1; done; echo tmp-bytes=$(cat /tmp/big-* | wc -c); exit ${failed:-0}"],
      workDir: workspace(),
      network: false,
      env: {},
      timeoutMs: 60_000,
    });
    expect(result.exitCode).not.toBe(0);
    const written = Number(/tmp-bytes=(\d+)/.exec(result.output)?.[1]);
    expect(written).toBeLessThanOrEqual(64 * MiB);
    expect(result.problems).toEqual(["exceeded PLANGATE_SANDBOX_DISK (64 MiB): no space left (the sandbox's /tmp holds at most this much)"]);
  }, 90_000);

  sandboxTest("a program allocating past PLANGATE_SANDBOX_MEMORY is stopped and the cap named", async () => {
    const hog = "const kept = []; for (let i = 0; i < 64; i++) kept.push(Buffer.alloc(16 * 1024 * 1024, 1)); console.log('allocated', kept.length * 16, 'MiB');";
    const sandbox = sandboxWith({ PLANGATE_SANDBOX_MEMORY: "300m" });
    const result = await sandbox.run({ command: ["/usr/bin/node", "-e", hog], workDir: workspace(), network: false, env: {}, timeoutMs: 60_000 });
    expect(result.output).not.toContain("allocated 1024 MiB");
    expect(result.exitCode).not.toBe(0);
    const how = sandbox.caps.mechanism.memory.startsWith("cgroup") ? "the OOM killer stopped it" : "a process ran out of address space";
    expect(result.problems).toEqual([`exceeded PLANGATE_SANDBOX_MEMORY (300 MiB): ${how}`]);
  }, 90_000);

  sandboxTest("where no cgroup can be made, rlimits still stop a fork bomb and name the cap", async () => {
    const marker = `6${Math.floor(Math.random() * 1e6)}`;
    // RLIMIT_NPROC counts every process and thread of the sandbox user on the machine (other test files' terraform
    // too): a cap with room for them, still far below the bomb's 2000.
    const caps = new SandboxCaps(capSettings(readSettings({ PLANGATE_SANDBOX_PIDS: "400" })), null);
    expect(caps.mechanism.summary).toBe("rlimits");
    const result = await new Sandbox("bwrap", { caps }).run({
      command: ["/bin/sh", "-c", `i=0; while [ $i -lt 2000 ]; do sleep ${marker} & i=$((i+1)); done; wait`],
      workDir: workspace(),
      network: false,
      env: {},
      timeoutMs: 60_000,
    });
    expect(result.timedOut).toBe(false);
    expect(result.problems).toEqual(["exceeded PLANGATE_SANDBOX_PIDS (400 processes)"]);
    expect(await leftAfterKill(`sleep ${marker}`)).toEqual([]);
  }, 90_000);

  sandboxTest("a run within its caps succeeds and leaves no cgroup behind", async () => {
    const sandbox = sandboxWith({ PLANGATE_SANDBOX_PIDS: "64", PLANGATE_SANDBOX_MEMORY: "300m", PLANGATE_SANDBOX_DISK: "64m" });
    const result = await sandbox.run({
      command: ["/bin/sh", "-c", "head -c 10000000 /dev/zero > small; head -c 10000000 /dev/zero > /tmp/small; for i in 1 2 3 4 5; do sleep 0.1 & done; wait; echo fine"],
      workDir: workspace(),
      network: false,
      env: {},
      timeoutMs: 60_000,
    });
    expect(result.problems).toEqual([]);
    expect(result.exitCode).toBe(0);
    expect(result.output).toContain("fine");
    const leftovers = execFileSync("find", ["/sys/fs/cgroup", "-maxdepth", "4", "-name", `plangate-run-${process.pid}-*`], { encoding: "utf8" });
    expect(leftovers).toBe("");
  }, 90_000);
});
