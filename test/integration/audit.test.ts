import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { appendAuditEvent, appendAuditEvents } from "../../src/audit/audit-log.js";
import { verifyAuditChain } from "../../src/audit/verify.js";
import { inTransaction } from "../../src/db/pool.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";

const run = promisify(execFile);

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => db?.drop());

async function auditVerify(): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run("node", ["bin/plangate.js", "audit", "verify"], { env: { ...process.env, DATABASE_URL: db.url } });
    return { code: 0, out: stdout + stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

const sha = "c".repeat(40);

describe("audit log", () => {
  test("events chain by hash, concurrent single and batched writers included", async () => {
    const event = (i: number) => ({ action: "plan.started" as const, actor: "plangate", repo: "o/r", pullNumber: 1, project: `p${i}`, workspace: "default", sha, runId: i, details: { n: i, nested: { b: 1, a: [1, "x"] } } });
    const batches = await Promise.all([
      ...Array.from({ length: 20 }, (_, i) => inTransaction(db.pool, async (tx) => [await appendAuditEvent(tx, event(i))])),
      // A plan group books its projects' events in one batch (appendAuditEvents), beside single writers.
      ...Array.from({ length: 4 }, (_, b) => inTransaction(db.pool, (tx) => appendAuditEvents(tx, Array.from({ length: 5 }, (_, i) => event(100 + b * 10 + i))))),
    ]);
    const { rows } = await db.pool.query("select id, prev_hash, hash, run_id from audit_events order by id");
    expect(rows).toHaveLength(40);
    for (let i = 1; i < rows.length; i++) expect(rows[i].prev_hash).toBe(rows[i - 1].hash);
    // A batch's events are consecutive in the chain and keep their order.
    for (const ids of batches.slice(20)) {
      const at = rows.findIndex((r) => Number(r.id) === ids[0]);
      expect(rows.slice(at, at + 5).map((r) => Number(r.id))).toEqual(ids);
      expect(rows.slice(at, at + 5).map((r) => Number(r.run_id))).toEqual([0, 1, 2, 3, 4].map((i) => Number(rows[at].run_id) + i));
    }
    expect(await verifyAuditChain(db.pool)).toEqual({ ok: true, checked: 40 });
    const verify = await auditVerify();
    expect(verify).toEqual({ code: 0, out: "audit chain intact: 40 events verified\n" });
  });

  test("UPDATE, DELETE and TRUNCATE are refused", async () => {
    await expect(db.pool.query("update audit_events set actor = 'mallory'")).rejects.toThrow(/append-only: UPDATE refused/);
    await expect(db.pool.query("delete from audit_events")).rejects.toThrow(/append-only: DELETE refused/);
    await expect(db.pool.query("truncate audit_events")).rejects.toThrow(/append-only: TRUNCATE refused/);
  });

  test("a row altered with the trigger disabled breaks the chain at that row: audit verify exits 1 naming it", async () => {
    const { rows } = await db.pool.query("select id from audit_events order by id offset 7 limit 1");
    const target = rows[0].id as number;
    await db.pool.query("alter table audit_events disable trigger audit_events_append_only");
    await db.pool.query("update audit_events set details = '{\"n\": 999}' where id = $1", [target]);
    await db.pool.query("alter table audit_events enable trigger audit_events_append_only");
    const verify = await auditVerify();
    expect(verify.code).toBe(1);
    expect(verify.out).toContain(`audit chain broken at audit_events.id=${target}: content does not match its hash`);
  });
});
