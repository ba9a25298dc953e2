import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { promisify } from "node:util";
import { appendAuditEvent, type AuditEvent } from "../../src/audit/audit-log.js";
import { EXPORT_PAGE } from "../../src/audit/export.js";
import { inTransaction } from "../../src/db/pool.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";

const run = promisify(execFile);

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => db?.drop());

async function auditExport(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run("node", ["bin/plangate.js", "audit", "export", ...args], {
      env: { ...process.env, DATABASE_URL: db.url },
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/**
 * What a SIEM does with the export alone, written from docs/audit.md and not
 * from plangate's code: JSON with keys sorted at every depth and no spaces.
 */
function canonical(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  const object = value as Record<string, unknown>;
  return `{${Object.keys(object).sort().map((k) => `${JSON.stringify(k)}:${canonical(object[k])}`).join(",")}}`;
}

type Line = Record<string, unknown> & { id: number; hash: string; prev_hash: string };

/** Re-verifies exported lines: each hash from its line's fields, each prev_hash against the line before. */
function reverify(ndjson: string, first = "0".repeat(64)): { ok: true; checked: number } | { ok: false; id: number; reason: string } {
  let prev = first;
  let checked = 0;
  for (const text of ndjson.split("\n").filter(Boolean)) {
    const { hash, prev_hash, ...content } = JSON.parse(text) as Line;
    if (prev_hash !== prev) return { ok: false, id: content.id, reason: "prev_hash" };
    const recomputed = createHash("sha256").update(`${prev_hash}\n${canonical(content)}`, "utf8").digest("hex");
    if (recomputed !== hash) return { ok: false, id: content.id, reason: "hash" };
    prev = hash;
    checked++;
  }
  return { ok: true, checked };
}

const lines = (ndjson: string): Line[] => ndjson.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Line);
const sha = "a".repeat(40);
const COLUMNS = ["id", "created_at", "action", "actor", "repo", "pull_number", "project", "workspace", "sha", "run_id", "details", "prev_hash", "hash"];

describe("plangate audit export", () => {
  test("streams every event with all its columns; the chain re-verifies from the NDJSON alone", async () => {
    // More than a page, in one transaction, with details a canonical form has to work for.
    const many = EXPORT_PAGE * 2 + 5;
    await inTransaction(db.pool, async (tx) => {
      for (let i = 0; i < many; i++) {
        const event: AuditEvent = i % 2
          ? { action: "plan.succeeded", actor: "plangate", repo: "octo/infra", pullNumber: 7, project: `p${i}`, workspace: "default", sha, runId: i,
            details: { z: 1, a: { y: [1, "two", null, { d: true, c: 1.5 }], b: "é ☃ \u2028 \"q\"\n" }, "10": "ten", "9": "nine" } }
          : { action: "command.received", actor: "alice", repo: "octo/infra", pullNumber: 7, details: { command: "/plan" } };
        await appendAuditEvent(tx, event);
      }
    });
    const result = await auditExport();
    expect(result).toMatchObject({ code: 0, stderr: "" });
    const exported = lines(result.stdout);
    expect(exported).toHaveLength(many);
    expect(Object.keys(exported[1]!)).toEqual(COLUMNS);
    expect(exported[1]).toMatchObject({ action: "plan.succeeded", repo: "octo/infra", pull_number: 7, project: "p1", sha, run_id: 1, prev_hash: exported[0]!.hash });
    expect(exported[0]).toMatchObject({ actor: "alice", project: null, workspace: null, sha: null, run_id: null, details: { command: "/plan" } });
    expect(exported.map((l) => l.id)).toEqual([...exported.map((l) => l.id)].sort((a, b) => a - b));
    expect(reverify(result.stdout)).toEqual({ ok: true, checked: many });
  });

  test("a tampered or dropped line fails the re-verification at that line", async () => {
    const { stdout } = await auditExport();
    const text = stdout.split("\n").filter(Boolean);
    const victim = lines(stdout)[10]!;

    const edited = [...text];
    edited[10] = JSON.stringify({ ...victim, actor: "mallory" });
    expect(reverify(edited.join("\n"))).toEqual({ ok: false, id: victim.id, reason: "hash" });

    const rehashed = [...text]; // a forger who recomputes the line's hash breaks the next line's link
    const { hash: _, prev_hash, ...content } = { ...victim, actor: "mallory" };
    rehashed[10] = JSON.stringify({ ...content, prev_hash, hash: createHash("sha256").update(`${prev_hash}\n${canonical(content)}`).digest("hex") });
    expect(reverify(rehashed.join("\n"))).toEqual({ ok: false, id: victim.id + 1, reason: "prev_hash" });

    const dropped = text.filter((_, i) => i !== 10);
    expect(reverify(dropped.join("\n"))).toEqual({ ok: false, id: victim.id + 1, reason: "prev_hash" });
  });

  test("--since ID exports the events after it, and they verify from its hash on", async () => {
    const all = lines((await auditExport()).stdout);
    const from = all[EXPORT_PAGE - 1]!; // a page boundary
    for (const args of [["--since", String(from.id)], [`--since=${from.id}`]]) {
      const result = await auditExport(...args);
      expect(result.code).toBe(0);
      expect(lines(result.stdout).map((l) => l.id)).toEqual(all.slice(EXPORT_PAGE).map((l) => l.id));
      expect(reverify(result.stdout, from.hash)).toEqual({ ok: true, checked: all.length - EXPORT_PAGE });
    }
    const last = all[all.length - 1]!;
    expect(await auditExport("--since", String(last.id))).toEqual({ code: 0, stdout: "", stderr: "" });
  });

  test("--since TIME exports from the first event recorded at or after it", async () => {
    // Three more events, each in a later millisecond than the one before.
    const later: string[] = [];
    for (const actor of ["bob", "carol", "dave"]) {
      const before = Date.now();
      while (Date.now() === before) await new Promise((r) => setImmediate(r));
      await inTransaction(db.pool, (tx) => appendAuditEvent(tx, { action: "approval.changed", actor, repo: "octo/infra", pullNumber: 7 }));
    }
    const all = lines((await auditExport()).stdout);
    for (const l of all.slice(-3)) later.push(l.created_at as string);
    const carol = all[all.length - 2]!;
    expect(carol.actor).toBe("carol");

    const at = await auditExport("--since", later[1]!);
    expect(lines(at.stdout).map((l) => l.actor)).toEqual(["carol", "dave"]);
    expect(reverify(at.stdout, carol.prev_hash)).toEqual({ ok: true, checked: 2 });

    // The same instant written in another zone, and a date alone (midnight UTC).
    const t = new Date(later[1]!);
    const plusTwo = new Date(t.getTime() + 2 * 3600_000).toISOString().replace("Z", "+02:00");
    expect(lines((await auditExport("--since", plusTwo)).stdout).map((l) => l.actor)).toEqual(["carol", "dave"]);
    expect(lines((await auditExport("--since", "2000-01-01")).stdout)).toHaveLength(all.length);
    expect(await auditExport("--since", "2999-01-01T00:00:00Z")).toEqual({ code: 0, stdout: "", stderr: "" });
  });

  test("a bad --since or an unknown argument exits 2 saying why", async () => {
    for (const bad of ["yesterday", "2026-13-45", "2026-12-01T10:00:00", "-3", "1.5", ""]) {
      const result = await auditExport("--since", bad);
      expect(result).toMatchObject({ code: 2, stdout: "" });
      expect(result.stderr).toContain(`--since must be an event id (a whole number) or an ISO 8601 time such as 2026-12-01 or 2026-12-01T09:30:00Z (got "${bad}")`);
    }
    const extra = await auditExport("--until", "5");
    expect(extra).toMatchObject({ code: 2, stdout: "" });
    expect(extra.stderr).toContain('unexpected arguments "--until 5"');
    expect((await auditExport("--since")).code).toBe(2);
  });
});
