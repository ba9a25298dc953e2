import { jest } from "@jest/globals";
import pg from "pg";
import { createPool } from "../../src/db/pool.js";
import { freePort } from "../../src/db/embedded.js";
import { ignore } from "../../src/handlers/decision.js";
import { DeliveryNotRecorded, recordAndEnqueue } from "../../src/handlers/record-delivery.js";
import { startHarness, type Harness } from "../support/app-harness.js";
import { deliver, examplePayload } from "../support/webhooks.js";

// The attacker reads what a webhook answers while plangate's database is gone: the database's own error text names the database, its server and its roles.
jest.setTimeout(120_000);

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ PLANGATE_WORKERS: "0" });
});
afterAll(async () => h?.close());

const databaseName = () => new URL(h.db.url).pathname.slice(1);

describe("a webhook answered while the database refuses it", () => {
  test("the answer is generic words and a 5xx; the database's name and error text stay in plangate's log", async () => {
    const payload = examplePayload("pull_request", "opened");
    expect((await deliver(h.url, "pull_request", payload, h.settings.webhookSecret)).status).toBe(200);

    // The database plangate uses is dropped under it: its connections are ended, new ones are refused ("database … does not exist").
    const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await admin.connect();
    await admin.query(`drop database ${databaseName()} with (force)`);
    await admin.end();

    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await deliver(h.url, "pull_request", payload, h.settings.webhookSecret));
    for (const answer of answers) {
      expect([500, 503]).toContain(answer.status);
      expect(answer.text).not.toContain(databaseName());
      expect(answer.text).not.toMatch(/does not exist|terminating|ECONNREFUSED|127\.0\.0\.1|5432|root/);
      expect(JSON.parse(answer.text)).toEqual({ error: expect.stringMatching(/^DeliveryNotRecorded: (the database is unavailable, the delivery was not recorded|the delivery could not be recorded) \(redeliver it\)$/) });
    }
    // The refused database (not a dropped connection) is what the sender saw last: the case where its name was shown.
    expect(answers.at(-1)!.status).toBe(500);
  });

  test("a pool pointed at a closed port: 503 with the same generic words, the cause kept for the log", async () => {
    const pool = createPool(`postgres://root@127.0.0.1:${await freePort()}/plangate_secret_name`);
    try {
      const refused = await recordAndEnqueue(pool, { id: "d1", event: "pull_request", payload: {} }, ignore("test")).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(DeliveryNotRecorded);
      expect((refused as DeliveryNotRecorded).status).toBe(503);
      expect((refused as Error).message).toBe("the database is unavailable, the delivery was not recorded (redeliver it)");
      expect(((refused as Error).cause as Error).message).toMatch(/ECONNREFUSED/);
    } finally {
      await pool.end();
    }
  });
});
