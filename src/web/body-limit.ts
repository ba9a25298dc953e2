import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Logger } from "pino";

/** The largest request body plangate reads. GitHub caps webhook payloads at 25 MB; nothing else is posted to plangate. */
export const WEBHOOK_BODY_LIMIT = 25 * 1024 * 1024;

/**
 * Bytes of request bodies held at once, all requests together, before their
 * signature is checked (anyone can send them): two of GitHub's largest. A
 * body that does not fit is refused with 503 and Retry-After; GitHub's own
 * deliveries are small, and a refused one is asked for again by the
 * redelivery sweep.
 */
export const UNVERIFIED_BODY_BUDGET = 2 * WEBHOOK_BODY_LIMIT;

/**
 * A refused sender may go on sending (read and thrown away, never kept) for
 * this long and this many bytes, so that it can read the refusal: closing a
 * socket with unread input makes the kernel answer with a reset, which
 * throws away the answer the sender has not read yet. Past either bound the
 * connection is half-closed, then cut.
 */
export const REFUSED_DRAIN_MS = 30_000;
export const REFUSED_DRAIN_BYTES = 2 * WEBHOOK_BODY_LIMIT;
/** After the half-close, how long the sender has to notice before the connection is cut. */
const LINGER_MS = 2_000;

/** What retrying a 503 should wait, in seconds. */
const RETRY_AFTER_S = 5;

type RequestListener = (req: IncomingMessage, res: ServerResponse) => unknown;

const hasBody = (req: IncomingMessage) => req.headers["content-length"] !== undefined || req.headers["transfer-encoding"] !== undefined;

/** Bytes of unverified bodies held, counted across requests (one per server). */
export class BodyBudget {
  private used = 0;
  constructor(readonly total = UNVERIFIED_BODY_BUDGET) {}

  /** Takes `bytes` from the budget; false (nothing taken) when they do not fit. */
  take(bytes: number): boolean {
    if (this.used + bytes > this.total) return false;
    this.used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.used -= bytes;
  }
}

interface Refusal {
  status: 413 | 503;
  message: string;
}

const tooLarge = (limit: number): Refusal => ({ status: 413, message: `request body larger than ${limit} bytes` });
const overBudget: Refusal = { status: 503, message: "too many large requests at once: try again shortly" };

/**
 * Answers `refusal` and goes on reading (and discarding) what the sender
 * still sends, up to REFUSED_DRAIN_BYTES and REFUSED_DRAIN_MS, so it reads
 * the answer instead of a reset; then half-closes, and cuts the connection
 * LINGER_MS later.
 */
function refuse(req: IncomingMessage, res: ServerResponse, refusal: Refusal, log: Logger, received?: number): void {
  log.warn({ url: req.url, contentLength: req.headers["content-length"], received, status: refusal.status }, "request body refused");
  const socket = req.socket;
  let discarded = 0;
  let cut: NodeJS.Timeout | undefined;
  const halfClose = () => {
    if (cut) return;
    socket.end();
    cut = setTimeout(() => socket.destroy(), LINGER_MS).unref();
  };
  const deadline = setTimeout(halfClose, REFUSED_DRAIN_MS).unref();
  socket.once("close", () => {
    clearTimeout(deadline);
    clearTimeout(cut);
  });
  req.on("data", (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > REFUSED_DRAIN_BYTES) halfClose();
  });
  // The body read to its end: nothing unread is left, so closing now resets nothing.
  req.once("end", halfClose);
  const body = JSON.stringify({ error: refusal.message });
  const headers: Record<string, string | number> = { "content-type": "application/json", "content-length": Buffer.byteLength(body) };
  if (refusal.status === 503) headers["retry-after"] = RETRY_AFTER_S;
  res.writeHead(refusal.status, headers);
  res.end(body);
  req.resume();
}

/**
 * Reads a request body of at most `limit` bytes into `req.body`, where
 * @octokit/webhooks' middleware takes it from (Probot types it so). A larger
 * announced length is refused before a byte is read; a chunked body is
 * counted as it streams and refused at the limit. What is held counts
 * against `budget` until the request is answered; a body that does not fit
 * gets 503. Resolves false when refused.
 */
export function readBoundedBody(req: IncomingMessage, res: ServerResponse, limit: number, log: Logger, budget = new BodyBudget()): Promise<boolean> {
  const announced = Number(req.headers["content-length"]);
  if (Number.isFinite(announced) && announced > limit) {
    refuse(req, res, tooLarge(limit), log);
    return Promise.resolve(false);
  }
  // An announced length is taken whole at once; a chunked body piece by piece.
  let held = 0;
  const hold = (bytes: number) => {
    if (!budget.take(bytes)) return false;
    held += bytes;
    return true;
  };
  const letGo = () => {
    budget.give(held);
    held = 0;
  };
  res.once("close", letGo);
  if (Number.isFinite(announced) && !hold(announced)) {
    refuse(req, res, overBudget, log);
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const stop = (refusal: Refusal) => {
      req.off("data", onData);
      chunks.length = 0;
      letGo();
      refuse(req, res, refusal, log, received);
      resolve(false);
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > limit) return stop(tooLarge(limit));
      if (!Number.isFinite(announced) && !hold(chunk.length)) return stop(overBudget);
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.once("end", () => {
      if (res.headersSent) return;
      req.body = Buffer.concat(chunks, received).toString("utf8");
      chunks.length = 0;
      resolve(true);
    });
    req.once("error", () => resolve(false));
    req.once("close", () => resolve(false)); // a no-op once resolved; otherwise the client went away
  });
}

/**
 * Puts the body limit in front of every request listener of `server`
 * (Probot's Server runs its webhook middleware first, before any handler
 * added with addHandler, so the limit has to sit on the HTTP server itself).
 * Requests without a body pass straight through; those with one share one
 * BodyBudget until they are answered.
 */
export function limitRequestBodies(server: Server, log: Logger, limit = WEBHOOK_BODY_LIMIT, budget = new BodyBudget()): void {
  const listeners = server.listeners("request") as RequestListener[];
  server.removeAllListeners("request");
  const dispatch = (req: IncomingMessage, res: ServerResponse) => {
    for (const listener of listeners) listener.call(server, req, res);
  };
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    if (!hasBody(req)) return dispatch(req, res);
    void readBoundedBody(req, res, limit, log, budget).then((ok) => ok && dispatch(req, res));
  });
  // `Expect: 100-continue` (curl sends it for large bodies): refuse before the client sends anything.
  server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => {
    if (Number(req.headers["content-length"]) > limit) return refuse(req, res, tooLarge(limit), log);
    res.writeContinue();
    server.emit("request", req, res);
  });
}
