import { constants } from "node:fs";
import { open, realpath, rm } from "node:fs/promises";
import path from "node:path";

/** Why a file of a workspace cannot be used (unsafe, missing, malformed); the message names the file, never its content. */
export class WorkspaceFileError extends Error {}

const DEFAULT_MAX_BYTES = 256 * 1024 * 1024;

/**
 * The real path of `file`'s folder and its name, when that folder is inside
 * `root` (links in the folder's path may point anywhere inside root; the
 * file itself is opened without following a link).
 */
async function placeInside(root: string, file: string, shown: string): Promise<string> {
  const realRoot = await realpath(root);
  const absolute = path.resolve(root, file);
  let folder: string;
  try {
    folder = await realpath(path.dirname(absolute));
  } catch {
    throw new WorkspaceFileError(`${shown} does not exist`);
  }
  if (folder !== realRoot && !folder.startsWith(realRoot + path.sep)) throw new WorkspaceFileError(`${shown} is outside the workspace`);
  return path.join(folder, path.basename(absolute));
}

function explain(error: NodeJS.ErrnoException, shown: string): Error {
  if (error.code === "ELOOP") return new WorkspaceFileError(`${shown} is a symbolic link: plangate does not follow links in the workspace`);
  if (error.code === "ENOENT") return new WorkspaceFileError(`${shown} does not exist`);
  return new WorkspaceFileError(`${shown} cannot be opened (${error.code ?? "error"})`);
}

/**
 * Reads a file of a workspace a pull request controls, as the host: the file
 * must be a regular file with one name, its folder must resolve inside root,
 * and no link is followed at the last step (O_NOFOLLOW). Without this, a
 * committed `cdktf.json -> /etc/shadow` would be read by root.
 */
export async function readInside(root: string, file: string, options: { shown?: string; maxBytes?: number } = {}): Promise<Buffer> {
  const shown = options.shown ?? path.basename(file);
  const target = await placeInside(root, file, shown);
  const handle = await open(target, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch((error: NodeJS.ErrnoException) => {
    throw explain(error, shown);
  });
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new WorkspaceFileError(`${shown} is not a regular file`);
    if (stat.nlink > 1) throw new WorkspaceFileError(`${shown} has more than one name (a hard link): refused`);
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    if (stat.size > maxBytes) throw new WorkspaceFileError(`${shown} is larger than ${maxBytes} bytes`);
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

/** readInside as UTF-8 text. */
export async function readTextInside(root: string, file: string, options: { shown?: string; maxBytes?: number } = {}): Promise<string> {
  return (await readInside(root, file, options)).toString("utf8");
}

/**
 * Writes a file into a workspace as the host: whatever has the name is removed
 * first (a planted link or hard link), then the file is created exclusively
 * without following links, in a folder that resolves inside root.
 */
export async function writeInside(root: string, file: string, data: Buffer | string, mode = 0o644): Promise<void> {
  const shown = path.basename(file);
  const target = await placeInside(root, file, shown);
  await rm(target, { force: true, recursive: true });
  const handle = await open(target, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode).catch((error: NodeJS.ErrnoException) => {
    throw explain(error, shown);
  });
  try {
    await handle.writeFile(data);
  } finally {
    await handle.close();
  }
}

/**
 * JSON.parse for a file a pull request controls. V8's message quotes the text
 * around the error, which would echo the file's bytes into a PR comment; this
 * keeps only the position.
 */
export function parsePrJson(text: string, shown: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const position = /position (\d+)/.exec((error as Error).message)?.[1];
    throw new WorkspaceFileError(`${shown} is not valid JSON${position ? ` (error at character ${position})` : ""}`);
  }
}
