import { DroppedWrite, orderedWrites, retryLimiterKeepingOrder, writeFirst, writeWhile } from "../../src/github/write-order.js";

/**
 * The order of GitHub writes, driven the way Octokit's throttling plugin
 * drives its limiters: each request goes through the client's retry limiter,
 * then waits its turn in the shared write limiter, then is sent.
 */
function client(writes: ReturnType<typeof orderedWrites>, sent: string[], held?: Promise<void>) {
  const retry = retryLimiterKeepingOrder();
  return (what: string) =>
    retry.schedule(async () => {
      await writes.key("app").schedule({}, async () => {
        if (what === "old check") await held; // GitHub is slow to answer the first write
      });
      sent.push(what);
    }) as Promise<void>;
}

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setImmediate(r));
}

describe("GitHub write order", () => {
  test("a comment asked for while other writes wait goes before them", async () => {
    const sent: string[] = [];
    let answer = () => {};
    const writes = orderedWrites(20);
    const write = client(writes, sent, new Promise<void>((r) => (answer = r)));
    const waiting = [write("old check"), write("old label"), write("old approval")];
    const comment = writeFirst(() => write("new comment"));
    await until(() => writes.waiting("app") === 3);
    answer();
    await Promise.all([...waiting, comment]);
    // The first write had already gone when the comment was asked for; the comment jumps the two still waiting.
    expect(sent).toEqual(["old check", "new comment", "old label", "old approval"]);
  });

  test("a write whose head the PR has moved past is dropped when its turn comes, and nothing is sent", async () => {
    const sent: string[] = [];
    const write = client(orderedWrites(20), sent);
    let current = true;
    // Queued while the PR is still at its head (the first write holds the turn)...
    const first = write("someone else's write");
    const waiting = writeWhile(async () => current, () => write("old approval"));
    const outcome = waiting.then(() => "sent", (error: unknown) => (error instanceof DroppedWrite ? "dropped" : String(error)));
    await first;
    // ...and a push arrives before its turn comes.
    current = false;
    expect(await outcome).toBe("dropped");
    await write("next");
    expect(sent).toEqual(["someone else's write", "next"]);
  });

  test("a write not wanted any more when asked takes no turn at all", async () => {
    const sent: string[] = [];
    const write = client(orderedWrites(20), sent);
    await expect(writeWhile(async () => false, () => write("stale"))).rejects.toBeInstanceOf(DroppedWrite);
    await write("next");
    expect(sent).toEqual(["next"]);
  });

  test("many clients at once: each write keeps its own condition, never another's", async () => {
    const sent: string[] = [];
    const writes = orderedWrites(1);
    const jobs = Array.from({ length: 40 }, (_, i) => {
      const write = client(writes, sent);
      const wanted = i % 2 === 0;
      return writeWhile(async () => wanted, () => write(`w${i}`)).then(
        () => "sent",
        (error: unknown) => (error instanceof DroppedWrite ? "dropped" : "failed"),
      );
    });
    const outcomes = await Promise.all(jobs);
    expect(outcomes).toEqual(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? "sent" : "dropped")));
    expect([...sent].sort()).toEqual(Array.from({ length: 20 }, (_, i) => `w${i * 2}`).sort());
  });
});
