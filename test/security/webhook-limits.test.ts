import { randomUUID } from "node:crypto";
import http from "node:http";
import { jest } from "@jest/globals";
import { WEBHOOK_BODY_LIMIT } from "../../src/web/body-limit.js";
import { startHarness, WEBHOOK_SECRET, type Harness } from "../support/app-harness.js";
import { deliver, examplePayload, signBody } from "../support/webhooks.js";

// The attacker: anyone who can reach the webhook URL. Oversized bodies must be refused without plangate holding them in memory.
jest.setTimeout(120_000);

const MiB = 1024 * 1024;
let h: Harness;
const sent: string[] = [];

beforeAll(async () => {
  h = await startHarness({ PLANGATE_WORKERS: "0" });
});
afterAll(async () => h?.close());

interface Answer {
  status: number;
  text: string;
}

/**
 * POSTs a webhook whose body comes from `chunks` (written with back-pressure),
 * resolving as soon as the answer arrives, whether or not the body was all sent.
 * Without `length` the body goes chunked. The connection is dropped after the answer.
 */
function post(chunks: Iterable<Buffer>, headers: Record<string, string>, length?: number, endBody = true): Promise<Answer> {
  const id = randomUUID();
  sent.push(id);
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = http.request(`${h.url}/api/github/webhooks`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-github-event": "issue_comment", "x-github-delivery": id, ...headers, ...(length !== undefined ? { "content-length": String(length) } : {}) },
    });
    req.on("response", (res) => {
      answered = true;
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => {
        resolve({ status: res.statusCode!, text });
        req.destroy();
      });
    });
    // Once answered, the server hanging up on the rest of the body is the point, not a failure.
    req.on("error", (error) => (answered ? undefined : reject(error)));
    const it = chunks[Symbol.iterator]();
    const pump = () => {
      for (;;) {
        if (answered || req.destroyed) return;
        const next = it.next();
        if (next.done) return endBody ? void req.end() : undefined;
        if (!req.write(next.value)) return void req.once("drain", pump);
      }
    };
    pump();
  });
}

/** A real, correctly signed issue_comment delivery padded to `size` bytes of JSON. */
function signedBody(size: number): { body: Buffer; signature: string } {
  const payload = examplePayload("issue_comment", "created");
  const skeleton = JSON.stringify({ ...payload, padding: "" });
  const text = JSON.stringify({ ...payload, padding: "x".repeat(size - Buffer.byteLength(skeleton)) });
  return { body: Buffer.from(text), signature: signBody(WEBHOOK_SECRET, text) };
}

function* slices(body: Buffer, size = MiB) {
  for (let i = 0; i < body.length; i += size) yield body.subarray(i, i + size);
}

function* zeros(total: number) {
  for (let i = 0; i < total; i += MiB) yield Buffer.alloc(Math.min(MiB, total - i), 0x20);
}

const recorded = async () => (await h.db.pool.query("select id from webhook_deliveries where id = any($1)", [sent])).rows;

test("the limit is GitHub's 25 MiB", () => {
  expect(WEBHOOK_BODY_LIMIT).toBe(25 * MiB);
});

test("a correctly signed 30 MiB delivery gets 413", async () => {
  const { body, signature } = signedBody(30 * MiB);
  const answer = await post(slices(body), { "x-hub-signature-256": signature }, body.length);
  expect(answer.status).toBe(413);
  expect(answer.text).toContain(`larger than ${WEBHOOK_BODY_LIMIT} bytes`);
});

test("an announced 30 MiB body gets 413, though only 1 MiB is ever sent", async () => {
  // The body never completes: an answer at all proves plangate did not wait to buffer it whole.
  const answer = await post(zeros(MiB), { "x-hub-signature-256": signBody(WEBHOOK_SECRET, "x") }, 30 * MiB, false);
  expect(answer.status).toBe(413);
});

test("a chunked 30 MiB stream gets 413 as it passes the limit, before the stream ends", async () => {
  // The stream never ends: the answer proves bytes were counted as they came, not after the whole body.
  const answer = await post(zeros(30 * MiB), { "x-hub-signature-256": signBody(WEBHOOK_SECRET, "x") }, undefined, false);
  expect(answer.status).toBe(413);
});

test("a chunked body under the limit is still read whole (and judged by its signature)", async () => {
  const { body } = signedBody(MiB);
  const answer = await post(slices(body, 64 * 1024), { "x-hub-signature-256": signBody(WEBHOOK_SECRET, "tampered") });
  expect(answer.status).toBe(400);
});

test("a delivery with a wrong signature gets 400 (checked in constant time by @octokit/webhooks-methods)", async () => {
  const { body } = signedBody(100_000);
  const answer = await post(slices(body), { "x-hub-signature-256": signBody("not-the-secret", body.toString()) }, body.length);
  expect(answer.status).toBe(400);
  expect(answer.text).toContain("signature does not match");
});

test("nothing refused was recorded, and a normal delivery still works afterwards", async () => {
  expect(sent.length).toBeGreaterThanOrEqual(4);
  expect(await recorded()).toEqual([]);
  const payload = examplePayload("issue_comment", "created");
  const ok = await deliver(h.url, "issue_comment", payload, WEBHOOK_SECRET);
  expect(ok.status).toBe(200);
  expect((await h.db.pool.query("select id from webhook_deliveries where id = $1", [ok.id])).rows).toEqual([{ id: ok.id }]);
});
