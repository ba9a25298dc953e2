/**
 * A hostile pull-request author against derived exports (src/git/derived-export.ts):
 * two or more commits whose every byte they choose, exported through
 * CommitExports (the first whole, the next derived from the kept one). Each test
 * asserts that nothing outside the export was written or changed (a victim
 * folder the test owns, which links in the commits point at), that the kept
 * earlier tree is unchanged, and that every export equals a whole export of its
 * commit (`git archive | tar -x`, scrubbed, read-only), whether it was derived
 * or the feature fell back to a whole export.
 *
 * Commits are written with git plumbing straight into the served bare
 * repository (blobs, trees and commits by hash-object/commit-tree, then
 * refs/heads/main moved): that is what a push does, and it lets a test say
 * what a work tree cannot (submodules, names that are not UTF-8, odd modes, and
 * trees git's fsck would refuse).
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { CommitExports } from "../../src/git/commit-exports.js";
import { MAX_TEXT_BYTES } from "../../src/git/commit-reader.js";
import { MAX_DERIVED_CHANGES } from "../../src/git/derived-export.js";
import { RepoMirrors } from "../../src/git/repo-mirror.js";
import { toolTest } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";

// Exports are derived only by a root process (a read-only export is root's): the tests run as root, as in CI.
const asRoot: typeof test = ((name: string, fn: jest.ProvidesCallback, timeout?: number) => toolTest(process.getuid?.() === 0, "root", name, fn, timeout)) as typeof test;

const scratch = mkdtempSync(path.join(os.tmpdir(), "plangate-derived-attacks-"));
const gitRoot = path.join(scratch, "git");
const token = async () => "unused";
let serial = 0;
const fresh = (name: string) => path.join(scratch, `${name}-${++serial}`);
const mirrors = () => new RepoMirrors(fresh("mirrors"), `file://${gitRoot}`);

beforeAll(() => mkdirSync(gitRoot));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------------------------
// Commits by plumbing

type Bytes = string | Buffer;
/** A path's entry: a file (0644), `{ exec }` (0755), `{ link }` (its target), `{ gitlink }` (a submodule's commit), or any `{ mode, content }`. */
type Spec = Bytes | { exec: Bytes } | { link: Bytes } | { gitlink: string } | { mode: string; content: Bytes };
/** A whole commit's tree: every path it holds. */
type Files = Record<string, Spec> | Array<[Bytes, Spec]>;

const gitEnv = { ...process.env, GIT_AUTHOR_NAME: "hostile", GIT_AUTHOR_EMAIL: "h@example.com", GIT_COMMITTER_NAME: "hostile", GIT_COMMITTER_EMAIL: "h@example.com", GIT_CONFIG_NOSYSTEM: "1" };
const gitRaw = (gitDir: string, args: string[], input?: Bytes): Buffer =>
  execFileSync("git", [`--git-dir=${gitDir}`, ...args], { env: gitEnv, input, stdio: ["pipe", "pipe", "pipe"], maxBuffer: 256 * 1024 * 1024 });
const git = (gitDir: string, args: string[], input?: Bytes) => gitRaw(gitDir, args, input).toString().trim();

interface Repo {
  git: GitRepo;
  ref: { owner: string; name: string };
  parent?: string;
}
let repos = 0;
function newRepo(): Repo {
  const name = `attack-${++repos}`;
  return { git: new GitRepo(gitRoot, "Codertocat", name), ref: { owner: "Codertocat", name } };
}

const blobCache = new Map<string, string>();
/** Writes a blob into the bare repository (one `git hash-object` per distinct contents). */
function blob(repo: Repo, contents: Bytes): string {
  const buf = Buffer.from(contents);
  const key = `${repo.git.bare}\0${createHash("sha256").update(buf).digest("hex")}`;
  let oid = blobCache.get(key);
  if (!oid) {
    oid = git(repo.git.bare, ["hash-object", "-w", "--stdin"], buf);
    blobCache.set(key, oid);
  }
  return oid;
}

/** A tree object written exactly as given (order, names with slashes, duplicate names, any mode): what a hostile client can push. */
function rawTree(repo: Repo, entries: Array<[mode: string, name: Bytes, oid: string]>): string {
  const body = Buffer.concat(entries.flatMap(([mode, name, oid]) => [Buffer.from(`${mode} `), Buffer.from(name), Buffer.from([0]), Buffer.from(oid, "hex")]));
  return git(repo.git.bare, ["hash-object", "-t", "tree", "--literally", "-w", "--stdin"], body);
}

interface Node {
  kids: Map<string, { name: Buffer; mode: string; oid?: string; node?: Node }>;
}
/** The tree of `files`, sorted as git sorts (a folder's name compares as if it ended in a slash). */
function writeTree(repo: Repo, files: Files): string {
  const root: Node = { kids: new Map() };
  for (const [file, spec] of Array.isArray(files) ? files : Object.entries(files)) {
    const parts: Buffer[] = [];
    const raw = Buffer.from(file);
    let start = 0;
    for (let i = 0; i <= raw.length; i++) {
      if (i === raw.length || raw[i] === 0x2f) {
        parts.push(raw.subarray(start, i));
        start = i + 1;
      }
    }
    let node = root;
    for (const part of parts.slice(0, -1)) {
      const key = part.toString("latin1");
      let kid = node.kids.get(key);
      if (!kid) node.kids.set(key, (kid = { name: part, mode: "40000", node: { kids: new Map() } }));
      if (!kid.node) throw new Error(`test bug: ${file} under a file`);
      node = kid.node;
    }
    const name = parts.at(-1)!;
    let mode: string;
    let oid: string;
    if (typeof spec === "string" || Buffer.isBuffer(spec)) [mode, oid] = ["100644", blob(repo, spec)];
    else if ("exec" in spec) [mode, oid] = ["100755", blob(repo, spec.exec)];
    else if ("link" in spec) [mode, oid] = ["120000", blob(repo, spec.link)];
    else if ("gitlink" in spec) [mode, oid] = ["160000", spec.gitlink];
    else [mode, oid] = [spec.mode, blob(repo, spec.content)];
    node.kids.set(name.toString("latin1"), { name, mode, oid });
  }
  const write = (node: Node): string => {
    const kids = [...node.kids.values()].map((kid) => ({ ...kid, oid: kid.node ? write(kid.node) : kid.oid! }));
    const sortKey = (kid: (typeof kids)[number]) => (kid.node ? Buffer.concat([kid.name, Buffer.from("/")]) : kid.name);
    kids.sort((a, b) => Buffer.compare(sortKey(a), sortKey(b)));
    return rawTree(repo, kids.map((kid) => [kid.mode, kid.name, kid.oid]));
  };
  return write(root);
}

/** A commit of `tree` on main (a push): returns its id. */
function commitTree(repo: Repo, tree: string, message = "hostile"): string {
  const sha = git(repo.git.bare, ["commit-tree", tree, ...(repo.parent ? ["-p", repo.parent] : []), "-m", message]);
  git(repo.git.bare, ["update-ref", "refs/heads/main", sha]);
  repo.parent = sha;
  return sha;
}
const commit = (repo: Repo, files: Files, message?: string) => commitTree(repo, writeTree(repo, files), message);

// ---------------------------------------------------------------------------------------------------------------
// What is on disk

const show = (b: Buffer) => JSON.stringify(b.toString("latin1"));
/** Every entry under `root` (and root itself): path, kind, mode, owner, contents (a link's target), all as raw bytes. */
function listing(root: string): string[] {
  const out: string[] = [];
  const top = lstatSync(root);
  out.push(`./ ${(top.mode & 0o7777).toString(8)} uid=${top.uid}`);
  const walk = (dir: Buffer, rel: Buffer) => {
    const names = (readdirSync(dir, { encoding: "buffer" }) as Buffer[]).sort(Buffer.compare);
    for (const name of names) {
      const full = Buffer.concat([dir, Buffer.from("/"), name]);
      const relName = rel.length ? Buffer.concat([rel, Buffer.from("/"), name]) : name;
      const stat = lstatSync(full);
      const mode = (stat.mode & 0o7777).toString(8);
      if (stat.isSymbolicLink()) out.push(`${show(relName)} link ${show(readlinkSync(full, { encoding: "buffer" }) as unknown as Buffer)} uid=${stat.uid}`);
      else if (stat.isDirectory()) {
        out.push(`${show(relName)}/ ${mode} uid=${stat.uid}`);
        walk(full, relName);
      } else if (stat.isFile()) {
        const contents = readFileSync(full);
        const shown = contents.length <= 4096 ? show(contents) : `sha256:${createHash("sha256").update(contents).digest("hex")} (${contents.length} bytes)`;
        out.push(`${show(relName)} ${mode} uid=${stat.uid} ${shown}`);
      } else out.push(`${show(relName)} ??? ${stat.mode.toString(8)}`);
    }
  };
  walk(Buffer.from(root), Buffer.alloc(0));
  return out;
}

/** A folder the test owns, outside every export, that hostile links point at: a file, a folder, a file in it. */
function makeVictim(): string {
  const victim = mkdtempSync(path.join(scratch, "victim-"));
  writeFileSync(path.join(victim, "sentinel.txt"), "untouched\n");
  mkdirSync(path.join(victim, "inner"));
  writeFileSync(path.join(victim, "inner", "file.txt"), "untouched too\n");
  return victim;
}
/** The victim as a listing plus what a write, a new name, a removal or a hard link would change (mtimes, ctimes, inodes, link counts). */
function victimState(victim: string): string[] {
  const state = listing(victim);
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const full = path.join(dir, name);
      const stat = lstatSync(full);
      state.push(`${path.relative(victim, full)} ino=${stat.ino} nlink=${stat.nlink} mtime=${stat.mtimeMs} ctime=${stat.ctimeMs}`);
      if (stat.isDirectory()) walk(full);
    }
  };
  const top = lstatSync(victim);
  state.push(`. ino=${top.ino} nlink=${top.nlink} mtime=${top.mtimeMs} ctime=${top.ctimeMs}`);
  walk(victim);
  return state;
}

async function wholeExport(ref: Repo["ref"], sha: string, mountPoints: string[] = []): Promise<string> {
  const into = fresh("whole");
  await mirrors().checkout(ref, sha, into, token, { readOnly: true });
  for (const dir of mountPoints) {
    rmSync(path.join(into, dir), { recursive: true, force: true });
    mkdirSync(path.join(into, dir), { mode: 0o555 });
  }
  return into;
}

interface Context {
  victim: string;
  /** The kept tree the next export derives from (absent before the first). */
  kept?: string;
}
type Step = Files | ((ctx: Context) => Files);

/**
 * Commits each step on a fresh repository and exports it through one
 * CommitExports (each export kept in turn, as a finished plan group's is).
 * After each export: the victim is as it was, the kept tree it was derived
 * from is as it was, the export equals a whole export of its commit, and the
 * tree kept from it equals it. Returns what `exported` said (derived or whole).
 */
async function play(steps: Step[], opts: { victim?: string; mountPoints?: string[] } = {}): Promise<boolean[]> {
  const repo = newRepo();
  const victim = opts.victim ?? makeVictim();
  const victimBefore = victimState(victim);
  const exported: boolean[] = [];
  const root = fresh("exports");
  const exports = new CommitExports(root, mirrors(), (derived) => exported.push(derived), opts.mountPoints ?? []);
  await exports.sweep();
  const ctx: Context = { victim };
  for (const [at, step] of steps.entries()) {
    const sha = commit(repo, typeof step === "function" ? step(ctx) : step, `step ${at}`);
    const keptBefore = ctx.kept && listing(ctx.kept);
    const made = await exports.acquire(`step-${at}`, repo.ref, sha, token);
    expect({ step: at, victim: victimState(victim) }).toEqual({ step: at, victim: victimBefore });
    if (ctx.kept) expect({ step: at, kept: listing(ctx.kept) }).toEqual({ step: at, kept: keptBefore });
    const whole = await wholeExport(repo.ref, sha, opts.mountPoints);
    expect({ step: at, derived: exported.at(-1), tree: listing(made.tree) }).toEqual({ step: at, derived: exported.at(-1), tree: listing(whole) });
    expect({ step: at, victim: victimState(victim) }).toEqual({ step: at, victim: victimBefore });
    made.release();
    const madeListing = listing(made.tree);
    await exports.discard(`step-${at}`);
    const kept = readdirSync(root).filter((name) => name.startsWith(".kept-"));
    expect(kept).toHaveLength(1);
    // Nothing else is left in the exports' root (no staging folder of a failed derivation).
    expect(readdirSync(root)).toEqual(kept);
    ctx.kept = path.join(root, kept[0]!, "tree");
    expect(listing(ctx.kept)).toEqual(madeListing);
  }
  return exported;
}

// ---------------------------------------------------------------------------------------------------------------

describe("a hostile author against derived exports", () => {
  asRoot("a deep chain of links out of the tree, turned into folders, back into links, and into folders again", async () => {
    const victim = makeVictim();
    const chain = (last: string): Record<string, Spec> => {
      const files: Record<string, Spec> = { "real.tf": "# real\n", "sub/deep/d0": { link: "../../l0" } };
      for (let i = 0; i < 9; i++) files[`l${i}`] = { link: `l${i + 1}` };
      files.l9 = { link: last };
      return files;
    };
    const without = (files: Record<string, Spec>, ...names: string[]) => Object.fromEntries(Object.entries(files).filter(([name]) => !names.includes(name)));
    const exported = await play(
      [
        chain(victim),
        {
          ...without(chain(victim), "l0", "l5", "l9", "sub/deep/d0"),
          "l0/pwned.txt": "pwned",
          "l0/a/b/c.txt": "deep",
          "l5/x": "x",
          "l9/sentinel.txt": "pwned",
          "l9/inner/file.txt": "pwned",
          "sub/deep/d0/inner/file.txt": "pwned",
        },
        chain(path.join(victim, "inner")),
        Object.fromEntries([...Array.from({ length: 10 }, (_, i) => [`l${i}/inner/file.txt`, `pwned ${i}`]), ["l9/sentinel.txt", "pwned"], ["sub/deep/d0/sentinel.txt", "pwned"], ["real.tf", "# real\n"]]),
        chain(victim),
      ],
      { victim },
    );
    expect(exported).toEqual([false, true, true, true, true]);
  });

  asRoot("a link at a parent of a modified file, a folder turned into a link out and back, a link out turned into a folder", async () => {
    const victim = makeVictim();
    const exported = await play(
      [
        { "envs/dev/main.tf": "dev", "envs/prod/main.tf": "prod", alias: { link: "envs" }, out: { link: victim }, "mods/m/main.tf": "m" },
        { "envs/dev/main.tf": "dev 2", "envs/prod/main.tf": "prod", alias: { link: "envs/dev" }, out: { link: victim }, mods: { link: victim } },
        { envs: { link: victim }, alias: { link: "envs" }, "out/sentinel.txt": "pwned", "out/inner/file.txt": "pwned", "mods/m/main.tf": "m 2" },
        { "envs/sentinel.txt": "pwned", "envs/inner/file.txt": "pwned", "alias/inner/file.txt": "pwned", out: { link: path.join(victim, "inner") }, mods: { link: "envs" } },
        { "envs/inner/file.txt": "pwned again", alias: { link: "out" }, "out/file.txt": "pwned", "mods/inner": { link: victim } },
      ],
      { victim },
    );
    expect(exported).toEqual([false, true, true, true, true]);
  });

  asRoot("links out replaced by files (written where the link was, not through it) and files replaced by links out", async () => {
    const victim = makeVictim();
    const sentinel = path.join(victim, "sentinel.txt");
    const exported = await play(
      [
        { f: { link: sentinel }, g: "g", h: { link: "g" }, "dir/x": "x", "inner-link": { link: path.join(victim, "inner") } },
        { f: "pwned", g: { link: sentinel }, h: "h", dir: { link: victim }, "inner-link": { link: path.join(victim, "inner", "file.txt") } },
        { f: { link: sentinel }, g: { exec: "pwned again" }, h: { link: "dir/x" }, "dir/x": "x 2", "inner-link": "pwned" },
        { f: { exec: "pwned" }, g: { link: "f" }, h: { link: sentinel }, "dir/x": { link: sentinel }, "inner-link/file.txt": "pwned" },
      ],
      { victim },
    );
    expect(exported).toEqual([false, true, true, true]);
  });

  asRoot("a file replaced by a link at the kept export's own file, then a commit that changes that file and the link's path", async () => {
    // RepoMirrors.checkoutFrom directly: where each export goes is known before its commit is made, so the
    // commits' links can point into the very trees that later exports are derived from.
    const repo = newRepo();
    const victim = makeVictim();
    const victimBefore = victimState(victim);
    const m = mirrors();
    const p1 = fresh("export-1");
    const p2 = fresh("export-2");
    const p3 = fresh("export-3");
    const c1 = commit(repo, { "a.txt": "one", "b.txt": "two", "c/d.txt": "three", "e.txt": "four" });
    const c2 = commit(repo, { "a.txt": "one", "b.txt": { link: path.join(p2, "a.txt") }, c: { link: path.join(p1, "c") }, "e.txt": { link: path.join(p1, "e.txt") }, "f.txt": { link: "a.txt" } });
    const c3 = commit(repo, { "a.txt": "changed", "b.txt": "changed", "c/d.txt": "changed", "c/new.txt": "new", "e.txt": "changed", "f.txt": "changed" });
    await m.checkout(repo.ref, c1, p1, token, { readOnly: true });
    const first = listing(p1);
    expect(await m.checkoutFrom(repo.ref, c2, p2, { sha: c1, tree: p1 }, token)).toBeUndefined();
    expect(listing(p1)).toEqual(first);
    const second = listing(p2);
    expect(second).toEqual(listing(await wholeExport(repo.ref, c2)));
    expect(await m.checkoutFrom(repo.ref, c3, p3, { sha: c2, tree: p2 }, token)).toBeUndefined();
    expect(listing(p2)).toEqual(second);
    expect(listing(p1)).toEqual(first);
    expect(listing(p3)).toEqual(listing(await wholeExport(repo.ref, c3)));
    expect(victimState(victim)).toEqual(victimBefore);
  });

  asRoot("names with newlines, tabs, quotes, leading dashes, spaces, unicode, and names that read as diff-tree output", async () => {
    const victim = makeVictim();
    const z = "0".repeat(40);
    const o = "1".repeat(40);
    const fake = `:100644 100644 ${z} ${o} M`;
    const names = ["with space.tf", "new\nline.tf", fake, `x\n${fake}\ny`, "tab\there", "-rf", "--help", "-", "caf\u00e9.tf", "cafe\u0301.tf", "\u65e5\u672c/\u8a9e.tf", "back\\slash", 'quote"d', "trailing space ", " leading", "*", "?", "[a]", "emoji \u{1F389}", "\u202Ertl.tf", "a:b", "x.lock", "..x", "x..", ".hidden", "\u00a0nbsp"];
    const first: Record<string, Spec> = {};
    for (const [i, name] of names.entries()) {
      first[name] = `first ${i}`;
      first[`dir ${name}/in ${name}`] = `inside ${i}`;
    }
    first["-link"] = { link: "--help" };
    first[`links ${fake}/link`] = { link: victim };
    const second: Record<string, Spec> = {};
    for (const [i, name] of names.entries()) {
      // Every third changed, every third removed, every third turned into a link (out, or to another odd name).
      if (i % 3 === 0) second[name] = `second ${i}`;
      else if (i % 3 === 2) second[name] = { link: i % 2 ? victim : names[(i + 1) % names.length]! };
      second[`dir ${name}/in ${name}`] = i % 2 ? `inside ${i}` : { exec: `inside, executable ${i}` };
    }
    second["-link"] = "now a file";
    second[`links ${fake}/link/sentinel.txt`] = "pwned";
    second[`new\n:000000 100644 ${z} ${o} A\n`] = "added";
    second["\n"] = "just a newline";
    second[" "] = { link: `${victim}/inner` };
    const third: Record<string, Spec> = { ...first, "new\nline.tf/sentinel.txt": "a file turned folder" };
    delete third["new\nline.tf"];
    const exported = await play([first, second, third], { victim });
    expect(exported).toEqual([false, true, true]);
  });

  asRoot("tooling names as files, folders and links out, at every depth, added, changed and removed beside real files", async () => {
    const victim = makeVictim();
    const exported = await play(
      [
        {
          ".terraform": { link: victim },
          "terraform.rc": "plugin_cache_dir = \"/x\"\n",
          ".terraformrc": "rc",
          ".terraform.d/credentials.tfrc.json": "{}",
          "envs/dev/main.tf": "dev",
          "envs/dev/.terraform/providers/p": "binary",
          "envs/dev/terraform.d/plugins/p": "p",
          ".TERRAFORM/x": "upper case: not tooling",
          "terraform.rc.bak": "not tooling",
          "terraform.rc ": "trailing space: not tooling",
          "envs/prod/main.tf": "prod",
        },
        {
          ".terraform/sentinel.txt": "pwned",
          "terraform.rc": { link: victim },
          ".terraformrc/inner/file.txt": "pwned",
          ".terraform.d": { link: path.join(victim, "inner") },
          "envs/dev/main.tf": "dev 2",
          "envs/dev/.terraform": { link: victim },
          "envs/dev/terraform.d": "a file now",
          ".TERRAFORM/x": "changed",
          "terraform.rc.bak": { link: "terraform.rc" },
          "terraform.rc ": { exec: "changed" },
          "envs/prod/main.tf": "prod",
          "envs/prod/.terraformrc": "new",
          "envs/prod/sub/terraform.d/inner/file.txt": "pwned",
          "envs/prod/sub/real.tf": "real",
        },
        {
          ".terraform": { exec: "now a file" },
          "envs/dev/main.tf": "dev 3",
          "envs/dev/.terraform/inner/file.txt": "pwned",
          "envs/prod/main.tf": "prod 2",
          "envs/prod/sub/real.tf": "real 2",
          "envs/prod/sub/terraform.d": { link: victim },
        },
      ],
      { victim },
    );
    // A change to a path with a tooling name is exported whole (a scrubbed folder is left behind, empty, by a whole export).
    expect(exported).toEqual([false, false, false]);
  });

  asRoot("a new folder that holds only a tooling name is an empty folder in a whole export", async () => {
    // Found by attack: a whole export writes mod/ and mod/.terraform/..., and the scrub leaves mod/ empty; a derived
    // one skipped the tooling path and never made mod/. A change to a tooling path is now exported whole.
    const exported = await play([{ "a.tf": "a" }, { "a.tf": "a", "mod/.terraform/providers/p": "binary" }]);
    expect(exported).toEqual([false, false]);
  });

  asRoot("a folder whose last real file goes while a tooling name stays is an empty folder in a whole export", async () => {
    // Found by attack: a removal pruned mod/ because the kept export's mod/ was empty once mod/main.tf went (its
    // mod/terraform.rc scrubbed), though the new commit still has mod/. Folders the new commit has are kept now.
    const exported = await play([
      { "a.tf": "a", "mod/main.tf": "m", "mod/terraform.rc": "rc" },
      { "a.tf": "a", "mod/terraform.rc": "rc" },
    ]);
    expect(exported).toEqual([false, true]);
  });

  asRoot("a folder that held only tooling names, removed, is gone from a whole export", async () => {
    // Found by attack: removing mod/.terraform/p found no mod/.terraform (scrubbed) and pruning stopped there, so the
    // empty mod/ stayed. A change to a tooling path is now exported whole.
    const exported = await play([{ "a.tf": "a", "mod/.terraform/p": "binary" }, { "a.tf": "a 2" }]);
    expect(exported).toEqual([false, false]);
  });

  asRoot("mode flips: plain, executable, link and back, and the odd modes old trees hold (100664, 100775, 100600, 100711)", async () => {
    const victim = makeVictim();
    const exported = await play(
      [
        { "a.sh": "x", "b.sh": { exec: "y" }, c: { link: "a.sh" }, e: "", f: { link: victim } },
        { "a.sh": { exec: "x" }, "b.sh": "y", c: { exec: "now executable" }, e: { link: "a.sh" }, f: { exec: "was a link out" } },
        { "a.sh": "x", "b.sh": { link: "a.sh" }, c: "c", e: { exec: "" }, f: { link: victim } },
        { "a.sh": { mode: "100664", content: "x" }, "b.sh": { mode: "100775", content: "y" }, c: { mode: "100600", content: "c" }, e: { mode: "100711", content: "" }, f: { mode: "100744", content: "f" } },
        { "a.sh": { mode: "100755", content: "x" }, "b.sh": { mode: "100644", content: "y" }, c: { mode: "100755", content: "c" }, e: { mode: "100644", content: "" }, f: { mode: "100644", content: "f" } },
      ],
      { victim },
    );
    expect(exported).toEqual([false, true, true, true, true]);
  });

  asRoot("many small commits in a row turning the same paths into files, executables, links out, folders and nothing", async () => {
    const victim = makeVictim();
    const kinds = (at: number, name: string): Files => {
      switch (at % 7) {
        case 0:
          return { [name]: `file ${at}` };
        case 1:
          return { [name]: { exec: `exec ${at}` } };
        case 2:
          return { [name]: { link: victim } };
        case 3:
          return { [`${name}/sentinel.txt`]: `pwned ${at}`, [`${name}/inner/file.txt`]: `pwned ${at}` };
        case 4:
          return { [name]: { link: "keep" } };
        case 5:
          return {};
        default:
          return { [`${name}/deep/er/still.tf`]: `deep ${at}` };
      }
    };
    const steps: Step[] = [];
    for (let at = 0; at < 22; at++) {
      steps.push({ keep: "keep", ...kinds(at, "p"), ...kinds(at + 3, "q/r"), ...kinds(at * 2, "s") });
      if (at === 10) steps.push({ keep: "keep", ...kinds(at, "p"), ...kinds(at + 3, "q/r"), ...kinds(at * 2, "s") }); // the same tree again
      if (at === 15) steps.push({}); // nothing at all
    }
    const exported = await play(steps, { victim });
    expect(exported).toEqual([false, ...steps.slice(1).map(() => true)]);
  }, 120_000);

  asRoot(`exactly ${MAX_DERIVED_CHANGES} changed paths are derived, ${MAX_DERIVED_CHANGES + 1} are exported whole`, async () => {
    const victim = makeVictim();
    const repo = newRepo();
    const files = (n: number, content: (i: number) => Spec): Record<string, Spec> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`many/${i % 7}/${i}`, content(i)]));
    const steps: Files[] = [
      { "base.txt": "b" },
      { "base.txt": "b", ...files(MAX_DERIVED_CHANGES, (i) => (i % 5 === 0 ? { link: victim } : `${i}`)) },
      { "base.txt": "b 2", ...files(MAX_DERIVED_CHANGES, (i) => (i % 5 === 1 ? { link: victim } : `${i} changed`)) },
      { "base.txt": "b 2", ...files(MAX_DERIVED_CHANGES, (i) => (i % 5 === 2 ? { link: victim } : `${i} changed again`)), "one/more": "x" },
    ];
    // The changes each step makes, as diff-tree counts them (on a repository of its own, with the same trees): the
    // limit is met exactly, then passed by one.
    const shas: string[] = [];
    for (const step of steps) shas.push(commit(repo, step));
    const counted = shas.slice(1).map((sha, i) => git(repo.git.bare, ["diff-tree", "-r", "-z", "--no-renames", "--name-only", shas[i]!, sha]).split("\0").filter(Boolean).length);
    expect(counted).toEqual([MAX_DERIVED_CHANGES, MAX_DERIVED_CHANGES + 1, MAX_DERIVED_CHANGES + 1]);
    const exported = await play(steps, { victim });
    expect(exported).toEqual([false, true, false, false]);
  }, 120_000);

  asRoot(`a file over ${MAX_TEXT_BYTES} bytes (which the reader refuses) falls back to a whole export; one of exactly that size is derived`, async () => {
    const big = (fill: string, size: number) => Buffer.alloc(size, fill);
    const exported = await play([
      { "small.txt": "s" },
      { "small.txt": "s", "big.bin": big("a", MAX_TEXT_BYTES + 1) },
      { "small.txt": "s 2", "big.bin": big("a", MAX_TEXT_BYTES + 1) },
      { "small.txt": "s 2", "big.bin": big("b", MAX_TEXT_BYTES + 1), "edge.bin": big("c", MAX_TEXT_BYTES) },
      { "small.txt": "s 3", "big.bin": big("b", MAX_TEXT_BYTES + 1), "edge.bin": big("d", MAX_TEXT_BYTES) },
    ]);
    expect(exported).toEqual([false, false, true, false, true]);
  }, 120_000);

  asRoot("empty files: added, emptied, made executable, under new folders, replacing folders", async () => {
    const victim = makeVictim();
    const exported = await play(
      [
        { e: "", "d/e": "", f: "x" },
        { e: "now", "d/e": { exec: "" }, f: "", g: "", "h/i/j": "" },
        { e: "", d: { link: victim }, f: { exec: "" }, "g/h": "", "h/i/j": { exec: "" } },
        { e: { link: "f" }, "d/sentinel.txt": "", f: "", g: "", h: "" },
      ],
      { victim },
    );
    expect(exported).toEqual([false, true, true, true]);
  });

  asRoot("submodules (gitlinks): added, kept beside changes, emptied around, replaced by folders and by links", async () => {
    const victim = makeVictim();
    const sub = "0123456789abcdef0123456789abcdef01234567";
    const other = "89abcdef0123456789abcdef0123456789abcdef";
    const exported = await play(
      [
        { "a.tf": "a", "mod/a.tf": "m", esc: { link: victim } },
        { "a.tf": "a", "mod/a.tf": "m", "mod/sub": { gitlink: sub }, esc: { link: victim } },
        { "a.tf": "a", "mod/a.tf": "m 2", "mod/sub": { gitlink: sub }, esc: { link: victim } },
        { "a.tf": "a", "mod/sub": { gitlink: sub }, esc: { link: victim } },
        { "a.tf": "a 2", "mod/sub/sentinel.txt": "pwned", esc: { link: victim } },
        { "a.tf": "a 2", "mod/sub/sentinel.txt": "pwned", esc: { gitlink: other }, ".terraform": { gitlink: other } },
        { "a.tf": "a 3", "mod/sub/sentinel.txt": "pwned", esc: { gitlink: other }, ".terraform": { gitlink: other } },
        { "a.tf": "a 3", "mod/sub": { gitlink: other }, "esc/sentinel.txt": "pwned" },
      ],
      { victim },
    );
    expect(exported).toEqual([false, false, true, true, false, false, true, false]);
  });

  asRoot("a mount point (an engine's writable folder) the commits make a link out, a folder and a file", async () => {
    const victim = makeVictim();
    const exported = await play(
      [
        { ".plangate-cdktf.out": { link: victim }, "a.tf": "a" },
        { ".plangate-cdktf.out/sentinel.txt": "pwned", "a.tf": "a" },
        { ".plangate-cdktf.out": { link: path.join(victim, "sentinel.txt") }, "a.tf": "a 2" },
        { ".plangate-cdktf.out": "a file", "a.tf": "a 2" },
      ],
      { victim, mountPoints: [".plangate-cdktf.out"] },
    );
    expect(exported).toEqual([false, true, true, true]);
  });

  asRoot(".gitattributes export-subst: a file the new commit does not change is stamped with the new commit by a whole export", async () => {
    // Found by attack: git archive applies the tree's .gitattributes (export-subst expands $Format:...$ with the
    // archived commit), and a derived export hard-linked the unchanged file stamped with the earlier commit. A commit
    // with a .gitattributes is now exported whole.
    const exported = await play([
      { ".gitattributes": "stamp.txt export-subst\n", "stamp.txt": "built from $Format:%H$\n", "a.tf": "1" },
      { ".gitattributes": "stamp.txt export-subst\n", "stamp.txt": "built from $Format:%H$\n", "a.tf": "2" },
    ]);
    expect(exported).toEqual([false, false]);
  });

  asRoot(".gitattributes export-ignore, eol=crlf and ident: a whole export leaves out or converts what deriving writes raw", async () => {
    // Found by attack: git archive leaves out export-ignore paths and converts text (eol=crlf, ident); a derived
    // export wrote every changed blob as stored (a file left out of the reviewed export would have been planned).
    const exported = await play([
      { "a.tf": "1" },
      { "a.tf": "1", ".gitattributes": "secret.tf export-ignore\n*.txt text eol=crlf\nid.tf ident\n", "secret.tf": "# never exported\n", "notes.txt": "a\nb\n", "id.tf": "# $Id$\n" },
    ]);
    expect(exported).toEqual([false, false]);
  });

  asRoot("a name that is not UTF-8 is written, and removed, under its own bytes", async () => {
    // Found by attack: git's output is read as UTF-8, so "x\xff.tf" reached deriveExport as "x\ufffd.tf": removing
    // the one removed a file of that other (valid) name, and the file the commit removed stayed. A path that does not
    // come through as UTF-8 now makes the export whole.
    const raw = Buffer.concat([Buffer.from("x"), Buffer.from([0xff]), Buffer.from(".tf")]);
    const exported = await play([
      [
        ["x\ufffd.tf", "a different file, whose name is valid UTF-8: stays"],
        [raw, "a latin-1 name: removed by the next commit"],
        ["a.tf", "a"],
      ],
      [
        ["x\ufffd.tf", "a different file, whose name is valid UTF-8: stays"],
        ["a.tf", "a 2"],
      ],
    ]);
    expect(exported).toEqual([false, false]);
  });

  asRoot("a name that is not UTF-8, removed while no other name is like it, is gone from the derived export too", async () => {
    const raw = Buffer.concat([Buffer.from("only"), Buffer.from([0xfe]), Buffer.from(".tf")]);
    const exported = await play([
      [
        [raw, "a latin-1 name: removed by the next commit"],
        ["a.tf", "a"],
      ],
      [["a.tf", "a 2"]],
    ]);
    expect(exported).toEqual([false, false]);
  });

  asRoot("a link whose target is not UTF-8 points where the commit says", async () => {
    // Found by attack: the link was made to `contents.toString()`, turning the byte 0xe9 into U+FFFD; now to the bytes.
    const target = Buffer.concat([Buffer.from("caf"), Buffer.from([0xe9]), Buffer.from(".tf")]);
    const exported = await play([{ "a.tf": "a" }, { "a.tf": "a", link: { link: target } }]);
    expect(exported).toEqual([false, true]);
  });

  asRoot("a parent that becomes a link out while a child is added under it (trees git's fsck refuses: a slash in a name, a name twice)", async () => {
    // Git cannot hold a link `esc` and a file `esc/pwned`; a hostile client can still write such trees (GitHub's
    // fsck refuses them, a mirror fetching without fsck does not): `esc/pwned` as one name, or `esc` twice.
    const repo = newRepo();
    const victim = makeVictim();
    const victimBefore = victimState(victim);
    const exported: boolean[] = [];
    const root = fresh("exports");
    const exports = new CommitExports(root, mirrors(), (derived) => exported.push(derived));
    await exports.sweep();
    const c1 = commit(repo, { "esc/a.tf": "a", "keep.tf": "k" });
    (await exports.acquire("one", repo.ref, c1, token)).release();
    await exports.discard("one");
    const keptTree = path.join(root, readdirSync(root).find((name) => name.startsWith(".kept-"))!, "tree");
    const keptBefore = listing(keptTree);
    const link = blob(repo, victim);
    const keep = blob(repo, "k");
    const pwned = blob(repo, "pwned");
    const slashName = commitTree(repo, rawTree(repo, [["120000", "esc", link], ["100644", "esc/pwned.txt", pwned], ["100644", "keep.tf", keep]]));
    const inner = rawTree(repo, [["100644", "pwned.txt", pwned]]); // a name the victim does not have: an exclusive create through the link would succeed
    const twice = commitTree(repo, rawTree(repo, [["120000", "esc", link], ["40000", "esc", inner], ["100644", "keep.tf", keep]]));
    const twiceReversed = commitTree(repo, rawTree(repo, [["40000", "esc", inner], ["120000", "esc", link], ["100644", "keep.tf", keep]]));
    for (const [at, sha] of [slashName, twice, twiceReversed].entries()) {
      const key = `hostile-${at}`;
      const made = await exports.acquire(key, repo.ref, sha, token).catch((error: Error) => error);
      expect(victimState(victim)).toEqual(victimBefore);
      expect(listing(keptTree)).toEqual(keptBefore);
      if (made instanceof Error) {
        // Refused as a whole export refuses it (tar will not write through the link): then it is not derived either.
        // (The derived export's error is in what is compared, so that a refusal for another reason names itself.)
        const whole = await wholeExport(repo.ref, sha).then(() => "exported", () => "refused");
        expect({ whole, derived: made.message }).toEqual({ whole: "refused", derived: expect.any(String) });
        expect(exported.at(-1)).toBe(false);
      } else {
        expect(listing(made.tree)).toEqual(listing(await wholeExport(repo.ref, sha)));
        made.release();
        await exports.discard(key);
        await exports.discard(key);
      }
      expect(victimState(victim)).toEqual(victimBefore);
    }
  });

  asRoot("a tree that lists a file through an in-tree link: removing that file removes it, not the file the link points at", async () => {
    // An approximation git's fsck refuses (a slash in a tree entry's name): `zz` a link to the folder `aa`, and a
    // file named `zz/keep.txt`. A whole export writes that file through the link (tar follows a relative link
    // within the tree), so the kept export has aa/keep.txt. The next commit removes `zz/keep.txt` only.
    // Found by attack: the removal of `zz/keep.txt` went through the link and removed aa/keep.txt, which the new
    // commit still has. A removal now refuses a parent that is not a real folder, and the commit is exported whole.
    const repo = newRepo();
    const k = blob(repo, "K: the folder's own file\n");
    const k2 = blob(repo, "K2: written through the link\n");
    const aa = rawTree(repo, [["100644", "keep.txt", k]]);
    const toAa = blob(repo, "aa");
    const c1Tree = rawTree(repo, [["40000", "aa", aa], ["120000", "zz", toAa], ["100644", "zz/keep.txt", k2]]);
    const c2Tree = rawTree(repo, [["40000", "aa", aa], ["120000", "zz", toAa], ["100644", "other.tf", k]]);
    const exported: boolean[] = [];
    const root = fresh("exports");
    const exports = new CommitExports(root, mirrors(), (derived) => exported.push(derived));
    await exports.sweep();
    const c1 = commitTree(repo, c1Tree);
    (await exports.acquire("one", repo.ref, c1, token)).release();
    await exports.discard("one");
    const keptTree = path.join(root, readdirSync(root).find((name) => name.startsWith(".kept-"))!, "tree");
    const keptBefore = listing(keptTree);
    const c2 = commitTree(repo, c2Tree);
    const made = await exports.acquire("two", repo.ref, c2, token);
    expect(listing(keptTree)).toEqual(keptBefore);
    expect(exported.at(-1)).toBe(false);
    expect(listing(made.tree)).toEqual(listing(await wholeExport(repo.ref, c2)));
  });
});

// Keeps the helpers honest: the listing tells raw names and link targets apart, the victim's state sees a new hard link.
test("the listing tells names and link targets that differ only in bytes that are not UTF-8 apart, and the victim state sees a hard link", () => {
  const root = mkdtempSync(path.join(scratch, "listing-"));
  writeFileSync(Buffer.from(path.join(root, "x\ufffd")), "same");
  const first = listing(root);
  rmSync(path.join(root, "x\ufffd"));
  writeFileSync(Buffer.concat([Buffer.from(path.join(root, "x")), Buffer.from([0xff])]), "same");
  expect(listing(root)).not.toEqual(first);
  const victim = makeVictim();
  const before = victimState(victim);
  execFileSync("ln", [path.join(victim, "sentinel.txt"), path.join(root, "hard")]);
  expect(victimState(victim)).not.toEqual(before);
});
