import type { HookDelivery } from "../../src/github/github.js";
import { chooseRedeliveries, failedGuids, REDELIVERIES_PER_DELIVERY, type KnownDeliveries } from "../../src/redelivery/choose-redeliveries.js";

let nextId = 1;
/** An attempt in GitHub's delivery log, `second` seconds into the hour. */
const attempt = (guid: string, statusCode: number, second: number, redelivery = false): HookDelivery => ({
  id: nextId++,
  guid,
  statusCode,
  deliveredAt: new Date(Date.UTC(2026, 0, 1, 12, 0, second)),
  redelivery,
  event: "pull_request",
  action: "opened",
});

const nothingKnown = (): KnownDeliveries => ({ recorded: new Set(), askedIds: new Set(), askedPerGuid: new Map() });
const ids = (attempts: HookDelivery[]) => attempts.map((a) => a.id);

describe("which failed deliveries the sweep asks GitHub for again", () => {
  test("a delivery that failed and that plangate did not record is asked for, by its newest attempt; oldest delivery first", () => {
    const a1 = attempt("a", 503, 10);
    const b1 = attempt("b", 0, 5);
    const a2 = attempt("a", 502, 20, true);
    expect(ids(chooseRedeliveries([a2, a1, b1], nothingKnown()).ask)).toEqual([b1.id, a2.id]);
  });

  test("a delivery that got a 2xx on any attempt, or that plangate recorded, is never asked for", () => {
    const failedThenDelivered = [attempt("a", 503, 1), attempt("a", 200, 2, true)];
    const timedOutButRecorded = attempt("b", 0, 3);
    const known = { ...nothingKnown(), recorded: new Set(["b"]) };
    expect(chooseRedeliveries([...failedThenDelivered, timedOutButRecorded, attempt("c", 204, 4)], known)).toEqual({ ask: [], givenUp: [] });
  });

  test("an attempt asked for already is not asked for again, while its redelivery is not in the log", () => {
    const a1 = attempt("a", 503, 1);
    const known: KnownDeliveries = { ...nothingKnown(), askedIds: new Set([a1.id]), askedPerGuid: new Map([["a", 1]]) };
    expect(chooseRedeliveries([a1], known).ask).toEqual([]);
    // Its redelivery failed too (every server was down again): that new attempt is asked for.
    const a2 = attempt("a", 503, 9, true);
    expect(ids(chooseRedeliveries([a2, a1], known).ask)).toEqual([a2.id]);
  });

  test(`a delivery asked for ${REDELIVERIES_PER_DELIVERY} times that still fails is given up, not asked for forever`, () => {
    const attempts = [attempt("a", 500, 1), attempt("a", 500, 2, true), attempt("a", 500, 3, true), attempt("a", 500, 4, true)];
    const known: KnownDeliveries = { ...nothingKnown(), askedIds: new Set(ids(attempts.slice(0, 3))), askedPerGuid: new Map([["a", 3]]) };
    expect(chooseRedeliveries(attempts, known)).toEqual({ ask: [], givenUp: [attempts[3]] });
  });

  test("only the guids of failed attempts are looked up", () => {
    expect(failedGuids([attempt("a", 503, 1), attempt("a", 503, 2), attempt("b", 200, 3), attempt("c", 0, 4)])).toEqual(["a", "c"]);
  });
});
