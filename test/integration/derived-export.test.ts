import { execFileSync } from "node:child_process";
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { CommitExports, KEPT_REPOSITORIES } from "../../src/git/commit-exports.js";
import { CommitTooLarge } from "../../src/git/commit-reader.js";
import { MAX_DERIVED_CHANGES } from "../../src/git/derived-export.js";
import { RepoMirrors } from "../../src/git/repo-mirror.js";
import { toolTest } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";

// Exports are derived only by a root process (a read-only export is root's): the tests run as root, as in CI.
const asRoot: typeof test = ((name: string, fn: jest.ProvidesCallback) => toolTest(process.getuid?.() === 0, "root", name, fn)) as typeof test;

const scratch = mkdtempSync(path.join(os.tmpdir(), "plangate-derived-"));
const gitRoot = path.join(scratch, "git");
const token = async () => "unused";
let repo: GitRepo;
const ref = { owner: "Codertocat", name: "Hello-World" };
let serial = 0;
const fresh = (name: string) => path.join(scratch, `${name}-${++serial}`);
const mirrors = (limits?: { maxCommitBytes: number; maxProjects: number }) => new RepoMirrors(fresh("mirrors"), `file://${gitRoot}`, undefined, limits);

beforeAll(() => {
  mkdirSync(gitRoot);
  repo = new GitRepo(gitRoot, ref.owner, ref.name);
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Every entry under `root`: its path, kind, mode, owner and contents (a link's target). */
function listing(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const full = path.join(dir, name);
      const stat = lstatSync(full);
      const mode = (stat.mode & 0o7777).toString(8);
      const rel = path.relative(root, full);
      if (stat.isSymbolicLink()) out.push(`${rel} link ${readlinkSync(full)} uid=${stat.uid}`);
      else if (stat.isDirectory()) {
        out.push(`${rel}/ ${mode} uid=${stat.uid}`);
        walk(full);
      } else out.push(`${rel} ${mode} uid=${stat.uid} ${JSON.stringify(readFileSync(full, "utf8"))}`);
    }
  };
  walk(root);
  return out;
}

/** Changes the work tree by hand (what GitRepo.commit cannot say: a folder becoming a file, an executable bit) and commits it. */
function commitByHand(change: (work: string) => void, message: string): string {
  change(repo.work);
  return repo.commit({}, "main", message);
}

const wholeExport = async (sha: string) => {
  const into = fresh("whole");
  await mirrors().checkout(ref, sha, into, token, { readOnly: true });
  return into;
};

/**
 * Exports `before` (kept once discarded), then `after`: the second export, whether each was derived, and the
 * CommitExports used.
 */
async function exportAfter(before: string, after: string, mirrorsUsed = mirrors()) {
  const exported: boolean[] = [];
  const exports = new CommitExports(fresh("exports"), mirrorsUsed, (derived) => exported.push(derived));
  await exports.sweep();
  (await exports.acquire("before", ref, before, token)).release();
  await exports.discard("before");
  return { made: exports.acquire("after", ref, after, token), exported, exports };
}

describe("an export derived from the repository's previous export", () => {
  asRoot("is what a whole export of the commit writes, through every kind of change, and leaves the earlier export as it was", async () => {
    const steps: string[] = [];
    steps.push(repo.commit({ "envs/dev/main.tf": "# dev\n", "envs/prod/main.tf": "# prod\n", "modules/m/main.tf": "# m\n", "only/one.txt": "1", "turns/into-dir": "file", "becomes/file/x": "x", "link": { symlink: "envs/dev/main.tf" }, "tool.sh": "#!/bin/sh\n" }, "main", "first"));
    steps.push(repo.commit({ "envs/dev/main.tf": "# dev, changed\n", "deep/new/folder/a.tf": "# new\n", "only/one.txt": null, "link": null }, "main", "modify, add deep, remove a folder's only file, remove a link"));
    steps.push(
      commitByHand((work) => {
        rmSync(path.join(work, "turns/into-dir"));
        mkdirSync(path.join(work, "turns/into-dir"));
        writeFileSync(path.join(work, "turns/into-dir/inside.txt"), "inside");
        rmSync(path.join(work, "becomes/file"), { recursive: true });
        writeFileSync(path.join(work, "becomes/file"), "now a file");
        chmodSync(path.join(work, "tool.sh"), 0o755);
        execFileSync("ln", ["-s", "../modules/m", path.join(work, "envs/m-link")]);
      }, "a file becomes a folder, a folder a file, an executable bit, a link to a folder"),
    );
    steps.push(repo.commit({ ".plangate-cdktf.out/stack.json": "{}", "modules/m/main.tf": "# m, changed\n" }, "main", "a mount point: emptied as a whole export's is"));
    steps.push(repo.commit({ "envs/dev/.terraform/providers/evil": "binary", "envs/prod/terraform.rc": "plugin_cache_dir = \"/x\"\n" }, "main", "tooling names: exported whole (the scrub leaves their folders behind)"));

    const exported: boolean[] = [];
    const exports = new CommitExports(fresh("exports"), mirrors(), (derived) => exported.push(derived), [".plangate-cdktf.out"]);
    await exports.sweep();
    let previous: { tree: string; listing: string[] } | undefined;
    for (const [at, sha] of steps.entries()) {
      const made = await exports.acquire(`step-${at}`, ref, sha, token);
      const whole = await wholeExport(sha);
      rmSync(path.join(whole, ".plangate-cdktf.out"), { recursive: true, force: true });
      mkdirSync(path.join(whole, ".plangate-cdktf.out"), { mode: 0o555 });
      expect(listing(made.tree)).toEqual(listing(whole));
      // The earlier export's files are linked, never written through: it still reads as its own commit.
      if (previous) expect(listing(previous.tree)).toEqual(previous.listing);
      made.release();
      previous = { tree: made.tree, listing: listing(made.tree) };
      await exports.discard(`step-${at}`);
      // Kept for the next one: the kept tree is the one just made, moved aside.
      const kept = readdirSync(path.join(exports["root"])).filter((name) => name.startsWith(".kept-"));
      expect(kept).toHaveLength(1);
      previous.tree = path.join(exports["root"], kept[0]!, "tree");
      expect(listing(previous.tree)).toEqual(previous.listing);
    }
    expect(exported).toEqual([false, true, true, true, false]);
  });

  asRoot("a link the new commit turns into a folder is removed before the folder is made: nothing is written through it", async () => {
    const victim = mkdtempSync(path.join(scratch, "victim-"));
    const before = repo.commit({ "escape": { symlink: victim }, "x.tf": "# x\n" }, "main", "a link out of the tree");
    const after = commitByHand((work) => {
      rmSync(path.join(work, "escape"));
      mkdirSync(path.join(work, "escape"));
      writeFileSync(path.join(work, "escape/pwned.txt"), "pwned");
    }, "the link becomes a folder with a file");
    const { made: making, exported } = await exportAfter(before, after);
    const made = await making;

    expect(exported).toEqual([false, true]);
    expect(readdirSync(victim)).toEqual([]);
    expect(lstatSync(path.join(made.tree, "escape")).isDirectory()).toBe(true);
    expect(readFileSync(path.join(made.tree, "escape/pwned.txt"), "utf8")).toBe("pwned");
    expect(listing(made.tree)).toEqual(listing(await wholeExport(after)));
  });

  asRoot("a repository whose .gitattributes only say what archive leaves alone is derived, and is what a whole export writes", async () => {
    const attributes = "* text=auto eol=lf\n*.png binary\n*.zip filter=lfs diff=lfs merge=lfs -text\n*.tf linguist-language=HCL\n";
    const before = repo.commit({ ".gitattributes": attributes, "envs/a/main.tf": "# a\r\n", "envs/a/logo.png": "\x89PNG\r\n" }, "main", "inert attributes");
    const after = repo.commit({ "envs/a/main.tf": "# a, changed\r\n", "envs/b/main.tf": "# b\n" }, "main", "a change beside them");
    const { made: making, exported } = await exportAfter(before, after);
    const made = await making;
    expect(exported).toEqual([false, true]);
    expect(listing(made.tree)).toEqual(listing(await wholeExport(after)));
  });

  asRoot("a commit over PLANGATE_MAX_COMMIT_SIZE is refused as a whole export refuses it, and writes nothing", async () => {
    const small = repo.commit({ "small.txt": "s" }, "main", "small");
    const big = repo.commit({ "big.bin": "b".repeat(64 * 1024) }, "main", "big");
    const { made, exports } = await exportAfter(small, big, mirrors({ maxCommitBytes: 32 * 1024, maxProjects: 2000 }));
    await expect(made).rejects.toBeInstanceOf(CommitTooLarge);
    expect(readdirSync(exports["root"]).filter((name) => !name.startsWith(".kept-"))).toEqual([]);
  });

  asRoot(`more than ${MAX_DERIVED_CHANGES} changed paths, or another repository, are exported whole`, async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i <= MAX_DERIVED_CHANGES; i++) files[`many/${i}.txt`] = String(i);
    const before = repo.commit({ "a.txt": "a" }, "main", "before many");
    const many = repo.commit(files, "main", "many files");
    const { made: making, exported } = await exportAfter(before, many);
    const made = await making;
    expect(exported).toEqual([false, false]);
    expect(listing(made.tree)).toEqual(listing(await wholeExport(many)));
  });

  asRoot(`a process keeps the last export of its ${KEPT_REPOSITORIES} most recent repositories`, async () => {
    const repos = Array.from({ length: KEPT_REPOSITORIES + 1 }, (_, i) => ({ git: new GitRepo(gitRoot, "Codertocat", `repo-${i}`), ref: { owner: "Codertocat", name: `repo-${i}` } }));
    const exported: boolean[] = [];
    const exports = new CommitExports(fresh("exports"), mirrors(), (derived) => exported.push(derived));
    await exports.sweep();
    const keptDirs = () => readdirSync(exports["root"]).filter((name) => name.startsWith(".kept-"));
    const exportOnce = async (key: string, r: (typeof repos)[number], file: string) => {
      (await exports.acquire(key, r.ref, r.git.commit({ "main.tf": file }), token)).release();
      await exports.discard(key);
    };
    for (const [i, r] of repos.entries()) await exportOnce(`first-${i}`, r, `# ${i}\n`);
    expect(keptDirs()).toHaveLength(KEPT_REPOSITORIES);
    // The first repository's was dropped, so its next export is whole; the last one's is derived.
    await exportOnce("again-0", repos[0]!, "# 0 again\n");
    await exportOnce("again-last", repos.at(-1)!, "# last again\n");
    expect(exported).toEqual([...repos.map(() => false), false, true]);
    expect(keptDirs()).toHaveLength(KEPT_REPOSITORIES);
  });
});

// Keeps the helper honest: a listing sees modes, links and contents.
test("the listing used above tells a mode, a link target and contents apart", () => {
  const root = mkdtempSync(path.join(scratch, "listing-"));
  writeFileSync(path.join(root, "f"), "one", { mode: 0o444 });
  const first = listing(root);
  chmodSync(path.join(root, "f"), 0o555);
  expect(listing(root)).not.toEqual(first);
  renameSync(path.join(root, "f"), path.join(root, "g"));
  expect(listing(root)).not.toEqual(first);
});
