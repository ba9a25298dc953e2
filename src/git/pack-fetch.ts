import { spawn } from "node:child_process";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

/**
 * A fetch of commits by id in one HTTP request: git's smart HTTP, protocol
 * version 2 (`command=fetch` with `done`), its pack streamed into
 * `git index-pack --fix-thin`, which checks every object it stores.
 *
 * `git fetch` asks the same of the server, but first asks for the server's
 * capabilities (a round trip more) and runs three processes before it sends
 * anything (git, `git remote-http`, `git-remote-http` loading libcurl).
 */
export interface PackRequest {
  /** The repository's URL, without `/git-upload-pack`. */
  url: string;
  authorization: string;
  wants: string[];
  /** Commits the mirror holds with all they reach: the server leaves out what they reach. */
  haves: string[];
  gitDir: string;
  env: Record<string, string>;
  timeoutMs: number;
}

/** The server did not answer in protocol version 2: the caller fetches with git instead. */
export class NotProtocolV2 extends Error {}

export async function fetchPack(request: PackRequest): Promise<void> {
  // index-pack starts while the request travels: its start-up is off the fetch's way.
  const indexer = spawn("git", [`--git-dir=${request.gitDir}`, "index-pack", "--stdin", "--fix-thin"], { env: request.env, stdio: ["pipe", "ignore", "pipe"] });
  const errors: Buffer[] = [];
  indexer.stderr.on("data", (chunk: Buffer) => errors.push(chunk));
  indexer.stdin.on("error", () => undefined); // its exit says why
  const exited = new Promise<number | null>((resolve) => {
    indexer.on("error", () => resolve(null));
    indexer.on("close", (code) => resolve(code));
  });
  const signal = AbortSignal.timeout(request.timeoutMs);
  let response: Response | undefined;
  try {
    response = await fetch(`${request.url}/git-upload-pack`, {
      method: "POST",
      headers: {
        authorization: request.authorization,
        "content-type": "application/x-git-upload-pack-request",
        accept: "application/x-git-upload-pack-result",
        "git-protocol": "version=2",
        "user-agent": "git/plangate",
      },
      body: fetchCommand(request.wants, request.haves),
      redirect: "error", // the token goes to GitHub's git endpoint only
      signal,
    });
    if (response.status !== 200 || !response.body) throw new Error(`the server answered ${response.status} ${response.statusText} for ${request.url}`);
    if (response.headers.get("content-type") !== "application/x-git-upload-pack-result") throw new NotProtocolV2(`unexpected content type ${response.headers.get("content-type")}`);
    // Backpressure, index-pack dying midway and the deadline all end the copy (and this wait).
    await pipeline(Readable.from(packData(new PktLines(response.body))), indexer.stdin, { signal });
  } catch (error) {
    indexer.kill("SIGKILL");
    await response?.body?.cancel().catch(() => undefined);
    await exited;
    throw error;
  }
  const code = await exited;
  if (code !== 0) throw new Error(`git index-pack failed: ${Buffer.concat(errors).toString().trim() || `exit ${code}`}`);
}

/** `command=fetch`: the wanted commits, what the mirror has, and `done` (no negotiation rounds: one request). */
function fetchCommand(wants: string[], haves: string[]): Buffer {
  return Buffer.concat([
    pktLine("command=fetch\n"),
    DELIM,
    pktLine("thin-pack\n"),
    pktLine("ofs-delta\n"),
    pktLine("no-progress\n"),
    ...wants.map((sha) => pktLine(`want ${sha}\n`)),
    ...haves.map((sha) => pktLine(`have ${sha}\n`)),
    pktLine("done\n"),
    FLUSH,
  ]);
}

/** A server's "ERR ..." line as an error. */
const serverError = (line: Buffer) => (line.toString("latin1").startsWith("ERR ") ? new Error(line.toString().slice(4).trim()) : undefined);

/** The response's `packfile` section: band 1 of its side-band (band 2 is progress, band 3 the server's error). */
async function* packData(lines: PktLines): AsyncGenerator<Buffer> {
  const first = await lines.next();
  if (first instanceof Buffer && serverError(first)) throw serverError(first);
  if (!(first instanceof Buffer) || first.toString("latin1") !== "packfile\n") throw new NotProtocolV2("the answer has no packfile section");
  for (;;) {
    const line = await lines.next();
    if (line === "flush") return;
    if (!(line instanceof Buffer)) throw new Error("the pack ended early");
    const error = serverError(line);
    if (error) throw error;
    const band = line[0];
    if (band === 3) throw new Error(line.subarray(1).toString().trim());
    if (band === 1) yield line.subarray(1);
  }
}

const FLUSH = Buffer.from("0000");
const DELIM = Buffer.from("0001");

function pktLine(text: string): Buffer {
  const payload = Buffer.from(text);
  return Buffer.concat([Buffer.from((payload.length + 4).toString(16).padStart(4, "0")), payload]);
}

/** git's pkt-line framing read off a byte stream: a payload, a flush (0000) or a delimiter (0001); undefined at the end. */
class PktLines {
  private buffered = Buffer.alloc(0);
  private readonly chunks: AsyncIterator<Uint8Array>;

  constructor(stream: AsyncIterable<Uint8Array>) {
    this.chunks = stream[Symbol.asyncIterator]();
  }

  private async fill(size: number): Promise<boolean> {
    while (this.buffered.length < size) {
      const { value, done } = await this.chunks.next();
      if (done) return false;
      this.buffered = this.buffered.length ? Buffer.concat([this.buffered, value]) : Buffer.from(value);
    }
    return true;
  }

  async next(): Promise<Buffer | "flush" | "delim" | undefined> {
    if (!(await this.fill(4))) return undefined;
    const length = this.buffered.subarray(0, 4).toString("latin1");
    if (!/^[0-9a-f]{4}$/.test(length)) throw new NotProtocolV2("the answer is not in pkt-lines");
    const size = Number.parseInt(length, 16);
    if (size === 0 || size === 1) {
      this.buffered = this.buffered.subarray(4);
      return size === 0 ? "flush" : "delim";
    }
    if (size < 4 || !(await this.fill(size))) throw new Error("the pack ended early");
    const line = this.buffered.subarray(4, size);
    this.buffered = this.buffered.subarray(size);
    return line;
  }
}
