import { createHash } from "node:crypto";
import { inflateRawSync } from "node:zlib";

/**
 * A saved plan file is a zip that carries, under `tfconfig/`, the
 * configuration terraform (or tofu) applies from it: every module's source
 * files as written, provisioner commands included. The plan's JSON shows an
 * interpolated command ("echo ${var.x}") only by its references, so the
 * fingerprint reads the commands' text from here.
 */
const CONFIG_PREFIX = "tfconfig/";
/** A plan file's configuration larger than this (uncompressed) is refused rather than read. */
export const MAX_CONFIG_SNAPSHOT_BYTES = 256 * 1024 * 1024;

const EOCD = 0x06054b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const STORED = 0;
const DEFLATED = 8;

export class PlanFileError extends Error {}

interface Entry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

function centralDirectory(zip: Buffer): Entry[] {
  // The end record sits in the last 22 bytes plus a comment of at most 64 KiB.
  let end = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === EOCD) {
      end = i;
      break;
    }
  }
  if (end < 0) throw new PlanFileError("the plan file is not a zip archive");
  const count = zip.readUInt16LE(end + 10);
  let at = zip.readUInt32LE(end + 16);
  const entries: Entry[] = [];
  for (let n = 0; n < count; n++) {
    if (at + 46 > zip.length || zip.readUInt32LE(at) !== CENTRAL) throw new PlanFileError("the plan file's zip directory is damaged");
    const nameLength = zip.readUInt16LE(at + 28);
    entries.push({
      method: zip.readUInt16LE(at + 10),
      compressedSize: zip.readUInt32LE(at + 20),
      size: zip.readUInt32LE(at + 24),
      localOffset: zip.readUInt32LE(at + 42),
      name: zip.toString("utf8", at + 46, at + 46 + nameLength),
    });
    at += 46 + nameLength + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
  }
  return entries;
}

function contents(zip: Buffer, entry: Entry, room: number): Buffer {
  const at = entry.localOffset;
  if (at + 30 > zip.length || zip.readUInt32LE(at) !== LOCAL) throw new PlanFileError(`the plan file's entry ${entry.name} is damaged`);
  const start = at + 30 + zip.readUInt16LE(at + 26) + zip.readUInt16LE(at + 28);
  const data = zip.subarray(start, start + entry.compressedSize);
  if (data.length !== entry.compressedSize) throw new PlanFileError(`the plan file's entry ${entry.name} is cut short`);
  if (entry.size > room) throw new PlanFileError(`the plan file's configuration is larger than ${MAX_CONFIG_SNAPSHOT_BYTES} bytes`);
  if (entry.method === STORED) return data;
  if (entry.method !== DEFLATED) throw new PlanFileError(`the plan file's entry ${entry.name} uses an unknown compression (${entry.method})`);
  try {
    // Never more than the entry says it holds, whatever the data inflates to.
    return inflateRawSync(data, { maxOutputLength: Math.max(1, entry.size) });
  } catch {
    throw new PlanFileError(`the plan file's entry ${entry.name} does not inflate to its stated size`);
  }
}

/**
 * A digest of the configuration a saved plan applies: every `tfconfig/`
 * file's name and content, in name order. Stable across plans of the same
 * configuration (zip timestamps are left out; module directories are
 * relative); throws PlanFileError for a plan file it cannot read.
 */
export function configSnapshotDigest(planFile: Buffer): string {
  const hash = createHash("sha256");
  let room = MAX_CONFIG_SNAPSHOT_BYTES;
  const entries = centralDirectory(planFile)
    .filter((e) => e.name.startsWith(CONFIG_PREFIX) && !e.name.endsWith("/"))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const data = contents(planFile, entry, room);
    room -= data.length;
    hash.update(`${entry.name}\0${data.length}\0`).update(data);
  }
  return hash.digest("hex");
}
