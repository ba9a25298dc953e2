import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { formatSize } from "../sandbox/limits.js";
import { DEFAULT_INPUT_LIMITS, InputRefused, PATH_COST_BYTES, type InputLimits } from "../settings/input-limits.js";

/** A file of a commit's tree: its path, git mode ("100644", "120000" for a link, "160000" for a submodule) and object id. */
export interface TreeFile {
  path: string;
  mode: string;
  oid: string;
  /** Its size in bytes, when boundedFiles measured it. */
  size?: number;
}

/** What git says of one object: `body` only when its contents were asked for. */
interface Answer {
  oid: string;
  type: string;
  size: number;
  body?: Buffer;
}

interface Pending {
  /** `contents` answers carry the object after the header line; `info` answers do not. */
  withBody: boolean;
  resolve(answer: Answer | undefined): void;
  reject(error: Error): void;
}

const OID = /^[0-9a-f]{40}$/;
/** Text this reader hands back at most: a larger file is a problem of its own, never read into memory. */
export const MAX_TEXT_BYTES = 8 * 1024 * 1024;

/** A file over MAX_TEXT_BYTES: its message names the file and both sizes. */
export class FileTooLarge extends InputRefused {}

/** A commit over PLANGATE_MAX_COMMIT_SIZE: its message names the setting. */
export class CommitTooLarge extends InputRefused {
  constructor(sha: string, maxBytes: number) {
    super(`commit ${sha.slice(0, 7)} is larger than PLANGATE_MAX_COMMIT_SIZE (${formatSize(maxBytes)}), counting every path and its contents, links and repeats included`);
  }
}

/** How many object sizes are asked of git at once while a commit is measured. */
const SIZES_AT_ONCE = 4096;

/**
 * One `git cat-file --batch-command` for many reads of a mirror: a plan's
 * config, its base branch's config, its file list and its module sources
 * cost one process instead of one each (every spawn blocks plangate's event
 * loop for a fork of the whole process). It can be opened before a fetch
 * into the mirror: git looks again for objects and refs it did not find.
 * Requests name object ids or fixed revisions only, never a path a PR chose.
 */
export class CommitReader {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly pending: Pending[] = [];
  /** Output not yet taken, in the pieces it came in: joined only once the answer it ends is whole (joining each piece as it came was quadratic). */
  private pieces: Buffer[] = [];
  private piecesLength = 0;
  /** Bytes the first pending answer needs before it is worth looking at again. */
  private needed = 0;
  private failure: Error | undefined;
  private readonly timer: NodeJS.Timeout;
  /**
   * What git said of an object named by its id, and the trees read, kept for
   * the reader's life (an object id names the same contents for ever): a
   * PR's head and base share most trees and files, read once for both.
   * Nothing missing is kept (a fetch may bring it).
   */
  private readonly known = new Map<string, Promise<Answer | undefined>>();

  /** `limits`: what a commit read through this reader may cost (boundedFiles, the projects a commit may hold). */
  constructor(
    mirror: string,
    env: Record<string, string>,
    timeoutMs: number,
    readonly limits: InputLimits = DEFAULT_INPUT_LIMITS,
  ) {
    this.child = spawn("git", [`--git-dir=${mirror}`, "cat-file", "--batch-command"], { env, stdio: ["pipe", "pipe", "pipe"] });
    let errors = "";
    this.child.stderr.on("data", (d: Buffer) => (errors = (errors + d.toString()).slice(-2000)));
    this.child.stdout.on("data", (chunk: Buffer) => this.take(chunk));
    this.child.stdin.on("error", () => undefined); // the exit below says why
    this.child.on("error", (error) => this.fail(new Error(`cannot start git cat-file: ${error.message}`)));
    this.child.on("close", (code) => this.fail(new Error(`git cat-file ended (${code ?? "signal"}): ${errors.trim() || "no more output"}`)));
    this.timer = setTimeout(() => {
      this.fail(new Error(`git cat-file took longer than ${timeoutMs} ms`));
      this.child.kill("SIGKILL");
    }, timeoutMs);
    this.timer.unref();
  }

  /** Ends the process; reads still pending fail. */
  close(): void {
    clearTimeout(this.timer);
    this.child.stdin.end();
  }

  /** The commit a revision names (a ref, `<ref>^{commit}`), or undefined when there is none. */
  async commit(revision: string): Promise<string | undefined> {
    const answer = await this.ask("info", `${revision}^{commit}`);
    return answer?.oid;
  }

  /** Whether the mirror holds the commit `sha`. */
  async holds(sha: string): Promise<boolean> {
    return (await this.commit(sha)) === sha;
  }

  /**
   * A file's text at a commit, or undefined when the commit has no such file
   * (a folder or a submodule there is no file either). `file` is one of
   * plangate's own names (.plangate.yml), never a PR's.
   */
  async text(sha: string, file: string): Promise<string | undefined> {
    const info = await this.ask("info", `${sha}:${file}`);
    if (!info || info.type !== "blob") return undefined;
    return (await this.blob(info.oid, file)).toString("utf8");
  }

  /**
   * Every file of a commit's tree (not its folders), in git's order, read one
   * level at a time. Over `maxBytes` (each path counting PATH_COST_BYTES and
   * its length) it stops with CommitTooLarge before listing more.
   */
  async files(sha: string, maxBytes = Infinity): Promise<TreeFile[]> {
    const root = await this.ask("info", `${sha}^{tree}`);
    if (!root) throw new Error(`commit ${sha} is not in the mirror`);
    const files: TreeFile[] = [];
    let counted = 0;
    let level: { prefix: string; oid: string }[] = [{ prefix: "", oid: root.oid }];
    while (level.length) {
      // Every tree of one level asked for at once (a tree repeated at many places once): one wait per level of depth, not per folder.
      const unique = [...new Set(level.map((t) => t.oid))];
      const bodies = new Map<string, Answer | undefined>();
      (await Promise.all(unique.map((oid) => this.once("contents", oid)))).forEach((tree, i) => bodies.set(unique[i]!, tree));
      const next: { prefix: string; oid: string }[] = [];
      for (const { prefix, oid } of level) {
        const tree = bodies.get(oid);
        if (!tree?.body || tree.type !== "tree") throw new Error(`tree ${oid} is missing from the mirror`);
        for (const entry of treeEntries(tree.body)) {
          const entryPath = prefix + entry.name;
          counted += PATH_COST_BYTES + Buffer.byteLength(entryPath);
          if (counted > maxBytes) throw new CommitTooLarge(sha, maxBytes);
          if (entry.mode === "40000") next.push({ prefix: `${entryPath}/`, oid: entry.oid });
          else files.push({ path: entryPath, mode: entry.mode, oid: entry.oid });
        }
      }
      level = next;
    }
    return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /**
   * The commit's files, refused with CommitTooLarge when, every path counted
   * (PATH_COST_BYTES and its length, plus its contents: a link's target, a
   * file's bytes, a blob at many paths at each of them), they pass `maxBytes`.
   * Contents are measured, never read.
   */
  async boundedFiles(sha: string, maxBytes = this.limits.maxCommitBytes): Promise<TreeFile[]> {
    const files = await this.files(sha, maxBytes);
    let counted = files.reduce((sum, f) => sum + PATH_COST_BYTES + Buffer.byteLength(f.path), 0);
    const blobs = files.filter((f) => f.mode !== "160000"); // a submodule is a commit id, not content
    const sizes = new Map<string, number>();
    const oids = [...new Set(blobs.map((f) => f.oid))];
    for (let at = 0; at < oids.length; at += SIZES_AT_ONCE) {
      const batch = oids.slice(at, at + SIZES_AT_ONCE);
      (await Promise.all(batch.map((oid) => this.once("info", oid)))).forEach((info, i) => sizes.set(batch[i]!, info?.size ?? 0));
    }
    for (const f of blobs) {
      f.size = sizes.get(f.oid)!;
      counted += f.size;
      if (counted > maxBytes) throw new CommitTooLarge(sha, maxBytes);
    }
    return files;
  }

  /** The contents of the blob `oid` (a file of a tree), refused over MAX_TEXT_BYTES. */
  async blob(oid: string, shown: string): Promise<Buffer> {
    if (!OID.test(oid)) throw new Error(`refusing unexpected object id: ${oid}`);
    const info = await this.once("info", oid);
    if (!info || info.type !== "blob") throw new Error(`${shown} is missing from the mirror`);
    if (info.size > MAX_TEXT_BYTES) throw new FileTooLarge(`${shown} is ${info.size} bytes; plangate reads files of at most ${MAX_TEXT_BYTES} bytes`);
    const answer = await this.ask("contents", oid);
    return answer!.body!;
  }

  /** ask() for an object id, answered from `known` when asked before (a tree's contents; any object's info). */
  private once(command: "info" | "contents", oid: string): Promise<Answer | undefined> {
    const key = `${command} ${oid}`;
    let answer = this.known.get(key);
    if (!answer) {
      answer = this.ask(command, oid);
      this.known.set(key, answer);
      answer.then((found) => found || this.known.delete(key), () => this.known.delete(key));
    }
    return answer;
  }

  private ask(command: "info" | "contents", object: string): Promise<Answer | undefined> {
    if (/[\n\r\0]/.test(object)) return Promise.reject(new Error("refusing a git object name with a line break"));
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending.push({ withBody: command === "contents", resolve, reject });
      this.child.stdin.write(`${command} ${object}\n`);
    });
  }

  /** Answers arrive in the order asked: "<oid> <type> <size>\n" (then the object and "\n" for contents), or "<name> missing\n". */
  private take(chunk: Buffer): void {
    this.pieces.push(chunk);
    this.piecesLength += chunk.length;
    if (this.piecesLength < this.needed) return;
    let buffered = this.pieces.length === 1 ? this.pieces[0]! : Buffer.concat(this.pieces, this.piecesLength);
    this.needed = 0;
    for (;;) {
      const next = this.pending[0];
      const eol = buffered.indexOf(10);
      if (!next || eol < 0) break;
      const header = buffered.subarray(0, eol).toString("utf8");
      const [oid, type, size] = header.split(" ");
      if (type === "missing" || type === "ambiguous" || size === undefined) {
        buffered = buffered.subarray(eol + 1);
        this.pending.shift();
        next.resolve(undefined);
        continue;
      }
      if (!next.withBody) {
        buffered = buffered.subarray(eol + 1);
        this.pending.shift();
        next.resolve({ oid: oid!, type: type!, size: Number(size) });
        continue;
      }
      const end = eol + 1 + Number(size);
      if (buffered.length < end + 1) {
        this.needed = end + 1; // nothing to look at again until the whole object is here
        break;
      }
      const body = Buffer.from(buffered.subarray(eol + 1, end));
      buffered = buffered.subarray(end + 1);
      this.pending.shift();
      next.resolve({ oid: oid!, type: type!, size: body.length, body });
    }
    this.pieces = buffered.length ? [buffered] : [];
    this.piecesLength = buffered.length;
  }

  private fail(error: Error): void {
    clearTimeout(this.timer);
    this.failure ??= error;
    for (const p of this.pending.splice(0)) p.reject(this.failure);
  }
}

/** A raw tree object: entries of "<mode> <name>\0<20-byte id>". */
function treeEntries(body: Buffer): { mode: string; name: string; oid: string }[] {
  const entries: { mode: string; name: string; oid: string }[] = [];
  let at = 0;
  while (at < body.length) {
    const space = body.indexOf(32, at);
    const nul = body.indexOf(0, space);
    if (space < 0 || nul < 0 || nul + 21 > body.length) throw new Error("unreadable git tree object");
    entries.push({ mode: body.toString("latin1", at, space), name: body.toString("utf8", space + 1, nul), oid: body.toString("hex", nul + 1, nul + 21) });
    at = nul + 21;
  }
  return entries;
}
