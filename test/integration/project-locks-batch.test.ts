import { acquireLocks, releaseLocks } from "../../src/db/locks.js";
import { inTransaction } from "../../src/db/pool.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";

// A plan group takes its projects' locks in one batch (acquireLocks): what each project's answer is,
// and two PRs taking overlapping sets at the same time.

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => db?.drop());

const repo = "octo/mono";
const keys = (names: string[]) => names.map((project) => ({ project, workspace: "default" }));
const holders = async () => Object.fromEntries((await db.pool.query<{ project: string; pull_number: number }>("select project, pull_number from locks where repo = $1", [repo])).rows.map((r) => [r.project, r.pull_number]));

describe("batched project locks", () => {
  test("free, already this PR's and another PR's: taken fresh, confirmed, refused naming the holder", async () => {
    await inTransaction(db.pool, (tx) => acquireLocks(tx, repo, keys(["mine"]), 1));
    await inTransaction(db.pool, (tx) => acquireLocks(tx, repo, keys(["theirs"]), 2));
    const got = await inTransaction(db.pool, (tx) => acquireLocks(tx, repo, keys(["free", "mine", "theirs"]), 1));
    expect(Object.fromEntries(got)).toEqual({
      "free\0default": { held: true, fresh: true },
      "mine\0default": { held: true, fresh: false },
      "theirs\0default": { held: false, holder: 2 },
    });
    expect(await holders()).toEqual({ free: 1, mine: 1, theirs: 2 });
    // The same project in another workspace is another lock.
    const other = await inTransaction(db.pool, (tx) => acquireLocks(tx, repo, [{ project: "theirs", workspace: "staging" }], 1));
    expect(other.get("theirs\0staging")).toEqual({ held: true, fresh: true });
    await inTransaction(db.pool, async (tx) => {
      await releaseLocks(tx, repo, 1);
      await releaseLocks(tx, repo, 2);
    });
  });

  test("two PRs taking overlapping sets at once: no deadlock, each project held by exactly one, and each answer says which", async () => {
    const names = Array.from({ length: 300 }, (_, i) => `p${String(i).padStart(3, "0")}`);
    // PR 10 asks in one order, PR 11 in the reverse: rows are taken sorted, so neither waits on the other in a cycle.
    const [ten, eleven] = await Promise.all([
      inTransaction(db.pool, (tx) => acquireLocks(tx, repo, keys(names.slice(0, 200)), 10)),
      inTransaction(db.pool, (tx) => acquireLocks(tx, repo, keys(names.slice(100).reverse()), 11)),
    ]);
    const held = await holders();
    expect(Object.keys(held)).toHaveLength(300);
    for (const name of names.slice(100, 200)) {
      const a = ten.get(`${name}\0default`)!;
      const b = eleven.get(`${name}\0default`)!;
      // Exactly one of them holds it, and the other is told so.
      expect([a.held, b.held].filter(Boolean)).toHaveLength(1);
      expect(a.held ? b : a).toEqual({ held: false, holder: held[name] });
    }
    for (const name of names.slice(0, 100)) expect(held[name]).toBe(10);
    for (const name of names.slice(200)) expect(held[name]).toBe(11);
  });
});
