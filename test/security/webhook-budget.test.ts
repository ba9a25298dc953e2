import { randomUUID } from "node:crypto";
import net from "node:net";
import { jest } from "@jest/globals";
import { WEBHOOK_BODY_LIMIT } from "../../src/web/body-limit.js";
import { startHarness, WEBHOOK_SECRET, type Harness } from "../support/app-harness.js";
import { underAttack } from "../support/attack-meter.js";
import { deliver, examplePayload, signBody } from "../support/webhooks.js";

/**
 * The anonymous sender: anyone who can reach the webhook URL. Many large
 * unsigned bodies at once must not take plangate's memory (they share one
 * budget; past it: 503), and a refused sender must be able to read the
 * refusal rather than see its connection reset.
 */
jest.setTimeout(300_000);

const MiB = 1024 * 1024;
let h: Harness;

beforeAll(async () => {
  h = await startHarness({ PLANGATE_WORKERS: "0" });
});
afterAll(async () => h?.close());

interface RawAnswer {
  /** The status line and headers read, however the connection ended. */
  head: string;
  status?: number;
  /** The error the sender's socket ended with while it was still sending (EPIPE, ECONNRESET), if any. */
  sendError?: string;
  /** Whether the whole body went out before the connection ended. */
  sentAll: boolean;
}

/**
 * POSTs `bodyBytes` bytes (announced in content-length) over a raw socket,
 * reading the answer while still sending, as a careful HTTP client does.
 * Resolves once the connection ends. `pace`: at most `bytes` every `everyMs` (a sender on a slower link).
 */
function rawPost(port: number, bodyBytes: number, pace?: { bytes: number; everyMs: number }): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    let head = "";
    let sendError: string | undefined;
    let sent = 0;
    const chunk = Buffer.alloc(pace?.bytes ?? 256 * 1024, 0x20);
    const answered = () => /^HTTP\/1\.1 \d{3}/.test(head);
    socket.on("data", (d: Buffer) => (head = (head + d.toString("latin1")).slice(0, 4096)));
    socket.on("error", (error: NodeJS.ErrnoException) => (sendError ??= error.code ?? error.message));
    socket.on("close", () => {
      resolve({ head, status: answered() ? Number(head.slice(9, 12)) : undefined, sendError, sentAll: sent === bodyBytes && socket.bytesWritten >= bodyBytes });
    });
    const pump = () => {
      while (sent < bodyBytes && !socket.destroyed) {
        const piece = chunk.subarray(0, Math.min(chunk.length, bodyBytes - sent));
        sent += piece.length;
        const more = socket.write(piece);
        if (pace) return void setTimeout(() => (socket.writableNeedDrain ? socket.once("drain", pump) : pump()), pace.everyMs);
        if (!more) return void socket.once("drain", pump);
      }
      if (!socket.destroyed) socket.end();
    };
    socket.write(
      `POST /api/github/webhooks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-GitHub-Event: issue_comment\r\n` +
        `X-GitHub-Delivery: ${randomUUID()}\r\nX-Hub-Signature-256: ${signBody("not-the-secret", "x")}\r\nContent-Length: ${bodyBytes}\r\n\r\n`,
    );
    pump();
  });
}

test("a 30 MiB body: the sender reads the 413 while still sending, and finishes sending without a reset, every time", async () => {
  // Three fast senders, and two on a slower link (about 6 MiB/s: 5 s for the body), as over the internet.
  const answers: RawAnswer[] = [];
  for (let i = 0; i < 3; i++) answers.push(await rawPost(h.app.port!, 30 * MiB));
  for (let i = 0; i < 2; i++) answers.push(await rawPost(h.app.port!, 30 * MiB, { bytes: 256 * 1024, everyMs: 40 }));
  expect(answers.map((a) => [a.status, a.sendError ?? "no error", a.sentAll])).toEqual(Array(5).fill([413, "no error", true]));
  for (const a of answers) expect(a.head).toContain(`larger than ${WEBHOOK_BODY_LIMIT} bytes`);
});

test("an ordinary HTTP client (fetch) posting 30 MiB gets the 413 as an answer, not a broken pipe", async () => {
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${h.url}/api/github/webhooks`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-github-event": "issue_comment", "x-github-delivery": randomUUID(), "x-hub-signature-256": signBody(WEBHOOK_SECRET, "x") },
      body: Buffer.alloc(30 * MiB, 0x20),
    });
    expect(res.status).toBe(413);
    expect(await res.text()).toContain(`larger than ${WEBHOOK_BODY_LIMIT} bytes`);
  }
});

test("40 concurrent unsigned 24 MiB bodies: memory stays bounded, /healthz answers, those past the budget get 503", async () => {
  const m = await underAttack(h.url, () => Promise.all(Array.from({ length: 40 }, () => rawPost(h.app.port!, 24 * MiB))));
  const statuses = m.result.map((a) => a.status);
  console.log(`40 x 24 MiB: memory +${m.rssGrowthMb} MB, slowest /healthz ${m.slowestHealthzMs} ms (${m.healthzAnswers} answers), statuses ${JSON.stringify(statuses)}`);
  // Every sender got an answer: 400 (read whole within the budget, then its signature refused) or 503 (past the budget).
  expect(statuses.every((s) => s === 400 || s === 503)).toBe(true);
  expect(statuses.filter((s) => s === 503).length).toBeGreaterThan(0);
  expect(statuses.filter((s) => s === 400).length).toBeGreaterThanOrEqual(1);
  expect(m.result.find((a) => a.status === 503)?.head).toMatch(/retry-after: \d+/i);
  expect(m.rssGrowthMb).toBeLessThan(300);
  expect(m.healthzAnswers).toBeGreaterThan(0);
});

test("once the attack is over the budget is whole again: a normal delivery is recorded", async () => {
  const ok = await deliver(h.url, "issue_comment", examplePayload("issue_comment", "created"), WEBHOOK_SECRET);
  expect(ok.status).toBe(200);
});
