import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Logger } from "pino";

/** The largest request body plangate reads. GitHub caps webhook payloads at 25 MB; nothing else is posted to plangate. */
export const WEBHOOK_BODY_LIMIT = 25 * 1024 * 1024;

type RequestListener = (req: IncomingMessage, res: ServerResponse) => unknown;

const hasBody = (req: IncomingMessage) => req.headers["content-length"] !== undefined || req.headers["transfer-encoding"] !== undefined;

/**
 * How long a refused client may go on sending (read and thrown away, never
 * kept) before its connection is cut. Closing a socket with unread input
 * makes the kernel answer with a reset, which can reach the client before
 * the 413 does; this grace lets the 413 arrive first.
 */
export const REFUSED_DRAIN_MS = 2_000;

function refuse(req: IncomingMessage, res: ServerResponse, limit: number, log: Logger, received?: number): void {
  log.warn({ url: req.url, contentLength: req.headers["content-length"], received, limit }, "request body over the limit refused");
  const body = JSON.stringify({ error: `request body larger than ${limit} bytes` });
  const socket = req.socket;
  const cut = setTimeout(() => socket.destroy(), REFUSED_DRAIN_MS).unref();
  socket.once("close", () => clearTimeout(cut));
  res.writeHead(413, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body, () => req.resume());
}

/**
 * Reads a request body of at most `limit` bytes into `req.body`, where
 * @octokit/webhooks' middleware takes it from (Probot types it so). A larger
 * announced length is refused before a byte is read; a chunked body is
 * counted as it streams and refused at the limit. Resolves false when refused.
 */
export function readBoundedBody(req: IncomingMessage, res: ServerResponse, limit: number, log: Logger): Promise<boolean> {
  const announced = Number(req.headers["content-length"]);
  if (Number.isFinite(announced) && announced > limit) {
    refuse(req, res, limit, log);
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > limit) {
        req.off("data", onData);
        req.pause();
        chunks.length = 0;
        refuse(req, res, limit, log, received);
        resolve(false);
        return;
      }
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.once("end", () => {
      if (received > limit) return;
      req.body = Buffer.concat(chunks).toString("utf8");
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
 * Requests without a body pass straight through.
 */
export function limitRequestBodies(server: Server, log: Logger, limit = WEBHOOK_BODY_LIMIT): void {
  const listeners = server.listeners("request") as RequestListener[];
  server.removeAllListeners("request");
  const dispatch = (req: IncomingMessage, res: ServerResponse) => {
    for (const listener of listeners) listener.call(server, req, res);
  };
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    if (!hasBody(req)) return dispatch(req, res);
    void readBoundedBody(req, res, limit, log).then((ok) => ok && dispatch(req, res));
  });
  // `Expect: 100-continue` (curl sends it for large bodies): refuse before the client sends anything.
  server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => {
    if (Number(req.headers["content-length"]) > limit) return refuse(req, res, limit, log);
    res.writeContinue();
    server.emit("request", req, res);
  });
}
