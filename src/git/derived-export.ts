import { lstat, mkdir, rm, rmdir, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { execute } from "../sandbox/exec.js";
import { TOOLING_NAMES } from "../sandbox/scrub.js";

/** One path that differs between two commits, as `git diff-tree -r --raw -z` gives it. */
export interface TreeChange {
  path: string;
  /** Git modes; "000000" on the side where the path does not exist. */
  oldMode: string;
  newMode: string;
  newOid: string;
}

/** More changed paths than this and a whole export is cheaper to reason about (and about as fast). */
export const MAX_DERIVED_CHANGES = 256;

const ABSENT = "000000";
const SUBMODULE = "160000";
const LINK = "120000";
const EXECUTABLE = "100755";

/** Parses `git diff-tree -r --raw -z --no-renames` output: `:old new oldOid newOid status\0path\0` per path. */
export function parseTreeChanges(raw: string): TreeChange[] {
  const fields = raw.split("\0");
  const changes: TreeChange[] = [];
  for (let at = 0; at + 1 < fields.length; at += 2) {
    const header = /^:(\d{6}) (\d{6}) [0-9a-f]{40} ([0-9a-f]{40}) [ADMT]$/.exec(fields[at]!);
    if (!header) throw new Error(`unexpected diff-tree line: ${JSON.stringify(fields[at]!.slice(0, 120))}`);
    changes.push({ oldMode: header[1]!, newMode: header[2]!, newOid: header[3]!, path: fields[at + 1]! });
  }
  return changes;
}

/**
 * Why a derived export would not be what `git archive | tar -x` writes, or
 * undefined when it can be derived. Left to a whole export: submodules
 * (archive writes a folder for them); a change to a `.gitattributes`, or
 * one of the new commit's (`attributes`: their texts) saying anything
 * archive acts on (see attributesProblem), as it would act on files that
 * did not change too; a change to a path with a tooling name
 * (scrubCheckout leaves its folder behind, empty); names that did not come
 * through as UTF-8 (git's output is read as text); paths git itself would
 * never write. `files`: every path of the new commit.
 */
export function underivable(changes: TreeChange[], files: string[], attributes: string[] = []): string | undefined {
  if (changes.length > MAX_DERIVED_CHANGES) return `${changes.length} changed paths`;
  const archiveAttributes = attributes.map(attributesProblem).find(Boolean);
  if (archiveAttributes) return archiveAttributes;
  if (files.some((file) => file.includes(UNDECODABLE))) return "a path that is not UTF-8";
  for (const change of changes) {
    if (change.oldMode === SUBMODULE || change.newMode === SUBMODULE) return `submodule ${change.path}`;
    if (isAttributes(change.path)) return "a .gitattributes changes";
    if (isTooling(change.path)) return `a path with a tooling name changes: ${change.path}`;
    if (change.path.includes(UNDECODABLE)) return "a path that is not UTF-8";
    const parts = change.path.split("/");
    if (path.isAbsolute(change.path) || parts.some((part) => part === "" || part === "." || part === "..")) return `unexpected path ${JSON.stringify(change.path)}`;
  }
  return undefined;
}

/**
 * Attributes `git archive` does not act on here (no filter driver, no
 * autocrlf and a native LF end of line in plangate's mirrors): the file is
 * written as stored whatever they say. `eol` only as `lf`.
 */
const INERT_ATTRIBUTES = new Set(["text", "binary", "diff", "merge", "whitespace", "delta", "encoding", "lockable", "filter", "crlf", "conflict-marker-size", "eol"]);

/**
 * Why a `.gitattributes` text would make `git archive` write something
 * other than the stored files (export-ignore, export-subst, ident,
 * working-tree-encoding, eol=crlf, a macro that could say any of them, or
 * anything not known to be inert), or undefined.
 */
export function attributesProblem(text: string): string | undefined {
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    if (line.startsWith("[attr]") || line.startsWith('"')) return `a .gitattributes line archive may act on: ${JSON.stringify(line.slice(0, 80))}`;
    for (const token of line.split(/\s+/).slice(1)) {
      const [name = "", value] = token.replace(/^[-!]/, "").split("=", 2);
      const inert = name.startsWith("linguist-") || (INERT_ATTRIBUTES.has(name) && (name !== "eol" || value === "lf"));
      if (!inert) return `a .gitattributes attribute archive may act on: ${JSON.stringify(token.slice(0, 80))}`;
    }
  }
  return undefined;
}

/** What a name that is not UTF-8 becomes when git's output is read as text. */
const UNDECODABLE = "\uFFFD";
const isAttributes = (file: string) => path.posix.basename(file) === ".gitattributes";

export interface DeriveRequest {
  /** A whole read-only export of an earlier commit (root's, no write bits): only ever read and hard-linked. */
  from: string;
  /** Where the new export goes; must not exist yet. */
  into: string;
  changes: TreeChange[];
  /** Every folder of the new commit (its files' parents): a folder a removal empties stays when the commit still has it. */
  folders: ReadonlySet<string>;
  /** The contents of a blob of the new commit. */
  blob(oid: string, shown: string): Promise<Buffer>;
  /** The environment and time limit of the copy (`cp`). */
  env: Record<string, string>;
  timeoutMs: number;
}

/**
 * Writes the export of a commit that differs from an earlier export's
 * commit by `changes` (see underivable): the earlier tree hard-linked into
 * `into` (files are shared, folders are new), then every changed path
 * removed and its new contents written as a new file. Nothing is written in
 * place (a shared file is unlinked, never opened for writing), and no link
 * is followed (a folder on the way to a path removed or written must be a
 * real folder; a file is created exclusively). Files and folders get the modes a
 * read-only export's tar gives them (0444, 0555 for executables and folders).
 * Throws on anything it does not expect; the caller removes `into` and
 * exports the commit whole.
 */
export async function deriveExport(request: DeriveRequest): Promise<void> {
  const { into, changes } = request;
  await linkCopy(request);
  // Every path that goes or changes is removed first: a link the new commit turns into a folder is gone before the folder is made.
  for (const change of changes) {
    if (change.oldMode === ABSENT) continue;
    await walkParents(into, change.path, "stop");
    await rm(path.join(into, change.path), { force: true, recursive: true });
    await pruneParents(into, change.path, request.folders);
  }
  for (const change of changes) {
    if (change.newMode === ABSENT) continue;
    const target = path.join(into, change.path);
    await walkParents(into, change.path, "make");
    const contents = await request.blob(change.newOid, change.path);
    if (change.newMode === LINK) await symlink(contents, target);
    else await writeFile(target, contents, { flag: "wx", mode: change.newMode === EXECUTABLE ? 0o555 : 0o444 });
  }
}

const isTooling = (file: string) => file.split("/").some((part) => TOOLING_NAMES.has(part));

/** `cp -a -l`: the earlier tree's files linked, its folders made anew with their modes and owner. */
async function linkCopy({ from, into, env, timeoutMs }: DeriveRequest): Promise<void> {
  const copied = await execute({ argv: ["cp", "-a", "-l", "--no-target-directory", from, into], cwd: path.dirname(into), env, timeoutMs });
  if (copied.exitCode !== 0) throw new Error(`cp -al failed: ${copied.output.trim() || `exit ${copied.exitCode}`}`);
}

/** The folders of a commit's files. */
export function foldersOf(files: string[]): Set<string> {
  const folders = new Set<string>();
  for (const file of files) for (let dir = path.posix.dirname(file); dir !== "." && !folders.has(dir); dir = path.posix.dirname(dir)) folders.add(dir);
  return folders;
}

/** Folders the new commit does not have go once a removal leaves them empty, as its export would not have them. */
async function pruneParents(root: string, file: string, keep: ReadonlySet<string>): Promise<void> {
  for (let dir = path.dirname(file); dir !== "." && !keep.has(dir); dir = path.dirname(dir)) {
    try {
      await rmdir(path.join(root, dir));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") return; // not empty yet: a later removal empties it
    }
  }
}

/**
 * Walks the folders on the way to `file`: each must be a real folder, never
 * a link (else it throws). A missing one is made (`make`) or ends the walk
 * (nothing can be under it).
 */
async function walkParents(root: string, file: string, missing: "make" | "stop"): Promise<void> {
  let dir = root;
  for (const part of path.dirname(file).split("/")) {
    if (part === ".") return;
    dir = path.join(dir, part);
    const found = await lstat(dir).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return undefined;
      throw error;
    });
    if (!found && missing === "stop") return;
    if (!found) await mkdir(dir, { mode: 0o555 });
    else if (!found.isDirectory()) throw new Error(`${path.relative(root, dir)} is not a folder in the earlier export`);
  }
}
