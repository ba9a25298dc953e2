import { spawn } from "node:child_process";

export interface ExtractRequest {
  mirror: string;
  sha: string;
  into: string;
  /** Bytes of the tar stream (every path's header and its contents) let through at most. */
  maxBytes: number;
  /** Everything written is unwritable as it is extracted (see RepoMirrors.checkout). */
  readOnly: boolean;
  cwd: string;
  env: Record<string, string>;
  timeoutMs: number;
}

export interface ExtractResult {
  exitCode: number | null;
  output: string;
  /** The tar stream passed maxBytes: both programs were stopped there. */
  tooLarge: boolean;
}

/** What is kept of the programs' error output. */
const KEPT_OUTPUT = 4000;

/**
 * `git archive | tar -x`, with plangate between the two counting the bytes:
 * past `maxBytes` both are killed, so an export never writes more than that
 * however often a commit repeats one large file. A read-only export (made
 * as root) is archived without write bits (git's tar.umask 0222) and
 * extracted with exactly those modes (tar's -p; root ignores the missing
 * write bits while extracting): no shell is started to set a umask.
 */
export function boundedExtract(request: ExtractRequest): Promise<ExtractResult> {
  const { mirror, sha, into, readOnly, maxBytes } = request;
  const options = { cwd: request.cwd, env: request.env };
  const unwritable = readOnly ? ["-c", "tar.umask=0222"] : [];
  const archive = spawn("git", [`--git-dir=${mirror}`, ...unwritable, "archive", "--format=tar", sha], { ...options, stdio: ["ignore", "pipe", "pipe"] });
  const untarArgs = readOnly ? ["-x", "--no-same-owner", "--same-permissions", "-C", into] : ["-x", "-C", into];
  const untar = spawn("tar", untarArgs, { ...options, stdio: ["pipe", "ignore", "pipe"] });
  let output = "";
  const keep = (d: Buffer) => (output = (output + d.toString()).slice(-KEPT_OUTPUT));
  archive.stderr.on("data", keep);
  untar.stderr.on("data", keep);
  let counted = 0;
  let tooLarge = false;
  const stop = () => {
    archive.kill("SIGKILL");
    untar.kill("SIGKILL");
  };
  archive.stdout.on("data", (chunk: Buffer) => {
    counted += chunk.length;
    if (counted <= maxBytes || tooLarge) return;
    tooLarge = true;
    archive.stdout.unpipe(untar.stdin);
    stop();
  });
  archive.stdout.pipe(untar.stdin);
  untar.stdin.on("error", () => undefined); // tar ended early: its exit says why
  const timer = setTimeout(() => {
    keep(Buffer.from(`\ncheckout took longer than ${request.timeoutMs} ms`));
    stop();
  }, request.timeoutMs);
  const ended = (child: typeof archive | typeof untar) =>
    new Promise<number | null>((resolve) => {
      child.once("error", (error) => {
        keep(Buffer.from(`\n${error.message}`));
        resolve(-1);
      });
      child.once("close", (code) => resolve(code));
    });
  return Promise.all([ended(archive), ended(untar)]).then(([archived, extracted]) => {
    clearTimeout(timer);
    return { exitCode: archived !== 0 ? archived : extracted, output, tooLarge };
  });
}
