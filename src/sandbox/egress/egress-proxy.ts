import { chmod, rm } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import { hostPort, refusalProblem, type EgressPolicy, type Refusal } from "./egress-policy.js";

/** A client must send its request head within this time. */
const HEAD_TIMEOUT_MS = 10_000;
/** Connecting to an allowed destination may take this long. */
const CONNECT_TIMEOUT_MS = 10_000;
/** A connection (tunnel or request) with no traffic either way for this long is closed. */
const IDLE_TIMEOUT_MS = 5 * 60_000;
/** Connections of one sandbox at once; more wait in the listen backlog. */
const MAX_CONNECTIONS = 256;
/** Distinct refusals kept per run; the rest are counted. */
const MAX_PROBLEMS = 20;

/** Headers that describe one hop (RFC 9110 section 7.6.1), never forwarded. */
const HOP_BY_HOP = new Set(["connection", "proxy-connection", "keep-alive", "proxy-authorization", "proxy-authenticate", "te", "trailer", "transfer-encoding", "upgrade"]);

/** What one sandbox run asked for and was refused. */
class RunRecord {
  readonly problems = new Map<string, string>();
  more = 0;
  refuse(refusal: Refusal): string {
    const problem = refusalProblem(refusal);
    const key = hostPort(refusal.host, refusal.port);
    if (!this.problems.has(key)) {
      if (this.problems.size < MAX_PROBLEMS) this.problems.set(key, problem);
      else this.more++;
    }
    return problem;
  }
  list(): string[] {
    return [...this.problems.values(), ...(this.more ? [`egress refused ${this.more} more destinations`] : [])];
  }
}

/**
 * plangate's egress filter on the host: an HTTP proxy on a Unix socket that a
 * sandbox reaches through its in-sandbox forwarder. It takes CONNECT (https
 * and the forwarders' tunnels) and absolute-form http:// requests, asks the
 * policy, and connects to exactly the address the policy checked. Nothing is
 * buffered beyond a request head; every connection has an idle timeout.
 */
export class EgressProxy {
  private readonly server: http.Server;
  private readonly sockets = new Set<net.Socket>();
  private run = new RunRecord();

  constructor(
    private readonly policy: EgressPolicy,
    readonly socketPath: string,
  ) {
    this.server = http.createServer({ headersTimeout: HEAD_TIMEOUT_MS, requestTimeout: 0, maxHeaderSize: 16 * 1024 }, (req, res) => void this.forward(req, res));
    this.server.maxConnections = MAX_CONNECTIONS;
    this.server.setTimeout(IDLE_TIMEOUT_MS);
    this.server.on("connection", (socket: net.Socket) => this.track(socket));
    this.server.on("connect", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => void this.tunnel(req, socket, head));
  }

  /** Listens on the socket path, connectable by the sandbox's unprivileged user. */
  async listen(): Promise<void> {
    await rm(this.socketPath, { force: true });
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.socketPath, () => resolve());
    });
    this.server.unref();
    await chmod(this.socketPath, 0o666);
  }

  /** Ends the current run: closes its connections and returns what it was refused; the next run starts clean. */
  endRun(): string[] {
    for (const socket of this.sockets) socket.destroy();
    const problems = this.run.list();
    this.run = new RunRecord();
    return problems;
  }

  async close(): Promise<void> {
    this.endRun();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    socket.on("error", () => socket.destroy());
  }

  /** CONNECT host:port: a tunnel to an allowed destination. */
  private async tunnel(req: http.IncomingMessage, client: net.Socket, head: Buffer): Promise<void> {
    const run = this.run;
    client.pause(); // nothing may be read (and lost) before the tunnel is spliced
    const authority = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(req.url ?? "");
    if (!authority) return void client.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\nCONNECT takes host:port\n");
    const port = Number(authority[2]);
    const decision = await this.policy.decide(authority[1]!, port);
    if (decision.verdict === "refused") return void client.end(`HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n${run.refuse(decision.refusal)}\n`);
    if (decision.verdict === "unresolvable") return void client.end(`HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n${decision.message}\n`);
    let upstream: net.Socket;
    try {
      upstream = await this.connect(decision.address, port);
    } catch (error) {
      return void client.end(`HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n${(error as Error).message}\n`);
    }
    if (client.destroyed) return void upstream.destroy();
    client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    if (head.length) upstream.write(head);
    splice(client, upstream);
  }

  /** An absolute-form request (`GET http://host/path`): forwarded as one origin-form request. */
  private async forward(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const run = this.run;
    const reply = (status: number, text: string) => {
      res.writeHead(status, { "content-type": "text/plain; charset=utf-8", connection: "close" });
      res.end(`${text}\n`);
    };
    let target: URL;
    try {
      target = new URL(req.url ?? "");
    } catch {
      return reply(400, "plangate's egress proxy takes CONNECT and absolute http:// URLs");
    }
    if (target.protocol !== "http:") return reply(400, "plangate's egress proxy takes CONNECT and absolute http:// URLs");
    const port = Number(target.port || 80);
    const decision = await this.policy.decide(target.hostname, port);
    if (decision.verdict === "refused") return reply(403, run.refuse(decision.refusal));
    if (decision.verdict === "unresolvable") return reply(502, decision.message);
    let socket: net.Socket;
    try {
      socket = await this.connect(decision.address, port);
    } catch (error) {
      return reply(502, (error as Error).message);
    }
    // No `agent` at all: with any agent (`agent: false` makes a fresh one) Node ignores
    // createConnection and dials the request's own host, which is unset here: this host's port 80.
    const upstream = http.request({
      method: req.method,
      path: `${target.pathname}${target.search}`,
      headers: forwardable(req.rawHeaders),
      setHost: false,
      createConnection: () => socket,
    });
    upstream.on("response", (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, forwardable(answer.rawHeaders));
      answer.pipe(res);
    });
    upstream.on("error", (error) => (res.headersSent ? res.destroy() : reply(502, error.message)));
    res.on("close", () => upstream.destroy());
    req.pipe(upstream);
  }

  /** A TCP connection to exactly the checked address, tracked so the run's end closes it. */
  private connect(address: string, port: number): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: address, port });
      this.track(socket);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connecting to ${hostPort(address, port)} timed out`));
      }, CONNECT_TIMEOUT_MS);
      socket.once("connect", () => {
        clearTimeout(timer);
        socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy());
        resolve(socket);
      });
      socket.once("error", (error) => {
        clearTimeout(timer);
        reject(new Error(`cannot connect to ${hostPort(address, port)}: ${error.message}`));
      });
    });
  }
}

/** Raw header pairs without hop-by-hop headers (and those the Connection header names). */
function forwardable(raw: string[]): string[] {
  const named = new Set<string>();
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === "connection") raw[i + 1]!.split(",").forEach((n) => named.add(n.trim().toLowerCase()));
  }
  const kept: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (!HOP_BY_HOP.has(name) && !named.has(name)) kept.push(raw[i]!, raw[i + 1]!);
  }
  return kept;
}

/** Pipes two sockets both ways with backpressure; either side closing or failing closes both. */
function splice(a: net.Socket, b: net.Socket): void {
  const close = () => {
    a.destroy();
    b.destroy();
  };
  for (const socket of [a, b]) {
    socket.on("error", close);
    socket.on("close", close);
    socket.setTimeout(IDLE_TIMEOUT_MS, close);
  }
  a.pipe(b);
  b.pipe(a);
}
