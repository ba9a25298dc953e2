import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { RepoMirrors } from "../../src/git/repo-mirror.js";
import { loadProjects } from "../../src/worker/plan/load-projects.js";
import { FakeGitHub } from "../support/fake-github.js";
import { GitRepo } from "../support/git-repo.js";
import { waitFor } from "../support/app-harness.js";

const TOKEN = "ghs_reader";
let fake: FakeGitHub;
let repo: GitRepo;
const ref = { owner: "Codertocat", name: "Hello-World" };
const token = async () => TOKEN;
const newMirrors = () => new RepoMirrors(mkdtempSync(path.join(os.tmpdir(), "plangate-reader-")), `http://${fake.host}`);
const gitRequests = () => fake.requests.filter((r) => /\.git\/(info\/refs|git-upload-pack)/.test(r.path)).length;

beforeAll(async () => {
  fake = new FakeGitHub(generateKeyPairSync("rsa", { modulusLength: 2048, publicKeyEncoding: { type: "spki", format: "pem" }, privateKeyEncoding: { type: "pkcs8", format: "pem" } }).publicKey);
  fake.issuedTokens.push(TOKEN);
  await fake.start();
  repo = new GitRepo(fake.gitRoot, ref.owner, ref.name);
  repo.commit({ "README.md": "base" });
});
afterAll(async () => fake?.stop());
afterEach(() => expect(fake.unexpected).toEqual([]));

describe("reading a commit through one git cat-file", () => {
  test("the file list and the module sources are git's own (ls-tree, grep), whatever the names", async () => {
    const sha = repo.commit(
      {
        "app/main.tf": 'module "net" {\n  source = "../modules/net"\n}\n',
        "app/nested/deep/er/vars.tf": '  source   =   "./local"\n# source = "./commented"\n',
        "modules/net/main.tf": "# no calls\n",
        // A call on the module's own line is not a line that sets a source (nor is it for git grep).
        "name with spaces/main.tf": 'module "x" { source = "../modules/net" }\nsource="./flat"\n',
        "line\nbreak/main.tf": 'source = "./odd"\n',
        "ünïcode/main.tf": 'source = "../modules/net"\n',
        "binary.tf": "source = \"./bin\"\n\u0000\u0001",
        "link.tf": { symlink: "app/main.tf" },
        "a-b/main.tf": "# sorts before a/ in git's order, after it as text\n",
        "a/main.tf": "# a\n",
      },
      "names",
    );
    const mirrors = newMirrors();
    const { mirror, reader } = await mirrors.reader(ref);
    try {
      await mirrors.fetchCommits(ref, [sha], reader, token);
      const files = await reader.files(sha);
      const listed = execFileSync("git", [`--git-dir=${mirror}`, "ls-tree", "-r", "-z", "--name-only", sha], { encoding: "utf8" }).split("\0").filter(Boolean);
      expect(files.map((f) => f.path).sort()).toEqual(listed.sort());
      expect(files.find((f) => f.path === "link.tf")?.mode).toBe("120000");
      expect(await reader.text(sha, "app/main.tf")).toContain('source = "../modules/net"');
      expect(await reader.text(sha, "app")).toBeUndefined(); // a folder is no file
      expect(await reader.text(sha, "missing.yml")).toBeUndefined();
    } finally {
      reader.close();
    }
    // The module calls plangate finds are those git grep finds (binary files skipped, as git grep does).
    const loaded = await loadProjects(mirrors, ref, sha, token);
    expect(loaded.ok).toBe(true);
    const calls = loaded.ok ? Object.fromEntries([...loaded.moduleCalls].map(([dir, to]) => [dir, [...to].sort()])) : {};
    expect(calls).toEqual({
      app: ["modules/net"],
      "app/nested/deep/er": ["app/nested/deep/er/local"],
      "name with spaces": ["name with spaces/flat"],
      "line\nbreak": ["line\nbreak/odd"],
      ünïcode: ["modules/net"],
    });
  });

  test("a reader opened before a fetch reads what the fetch brought; a commit the mirror holds is not fetched again", async () => {
    const first = repo.commit({ "p/main.tf": "# one\n" }, "fetches");
    const mirrors = newMirrors();
    const { reader } = await mirrors.reader(ref);
    try {
      expect(await reader.holds(first)).toBe(false);
      const before = gitRequests();
      await mirrors.fetchCommits(ref, [first], reader, token);
      // Commits asked for by id, in one request (no capabilities first, no refs listed).
      expect(gitRequests() - before).toBe(1);
      expect(await reader.holds(first)).toBe(true);
      expect(await reader.text(first, "p/main.tf")).toBe("# one\n");
      const second = repo.commit({ "p/main.tf": "# two\n" }, "fetches");
      const again = gitRequests();
      await mirrors.fetchCommits(ref, [first, second], reader, token);
      expect(gitRequests() - again).toBe(1); // only the missing one
      expect(await reader.text(second, "p/main.tf")).toBe("# two\n");
      const held = gitRequests();
      await mirrors.fetchCommits(ref, [first, second], reader, token);
      expect(gitRequests()).toBe(held);
    } finally {
      reader.close();
    }
  });

  test("a commit GitHub does not have fails the fetch naming git's error; reads after close fail, never hang", async () => {
    const mirrors = newMirrors();
    const { reader } = await mirrors.reader(ref);
    await expect(mirrors.fetchCommits(ref, ["0123456789abcdef0123456789abcdef01234567"], reader, token)).rejects.toThrow(/^git fetch failed: upload-pack: not our ref 0123456789abcdef/);
    await expect(mirrors.fetchCommits(ref, ["not-a-sha"], reader, token)).rejects.toThrow("refusing unexpected commit");
    reader.close();
    await expect(reader.files("0123456789abcdef0123456789abcdef01234567")).rejects.toThrow(/git cat-file ended/);
  });

  test("git's housekeeping of a mirror waits until fetches stop: a fetch never waits for it, and it runs afterwards", async () => {
    const mirrors = new RepoMirrors(mkdtempSync(path.join(os.tmpdir(), "plangate-reader-")), `http://${fake.host}`, 500);
    const { mirror, reader } = await mirrors.reader(ref);
    const packs = () => readdirSync(path.join(mirror, "objects", "pack")).filter((f) => f.endsWith(".pack")).length;
    // Each fetch keeps its own pack, more than one pack is what makes git's housekeeping repack, and it repacks before it returns.
    for (const [key, value] of [["fetch.unpackLimit", "1"], ["gc.autoPackLimit", "1"], ["gc.autoDetach", "false"]] as const) execFileSync("git", [`--git-dir=${mirror}`, "config", key, value]);
    try {
      await mirrors.fetchCommits(ref, [repo.commit({ "h/main.tf": "# one\n" }, "housekeeping")], reader, token);
      const second = repo.commit({ "h/main.tf": "# two\n" }, "housekeeping");
      await mirrors.fetchCommits(ref, [second], reader, token);
      expect(packs()).toBe(2); // git fetch would have repacked before it returned
      await waitFor("the housekeeping's repack", () => packs() === 1 || undefined, 15_000);
      expect(await reader.text(second, "h/main.tf")).toBe("# two\n");
    } finally {
      reader.close();
    }
  });

  test("housekeeping drops the refs of commits older than 30 days, loose or packed, and keeps branch heads; such a commit is still read", async () => {
    // Housekeeping 6 s after the last fetch: under a full suite's load the steps below, before the refs are looked at,
    // took longer than 1.5 s, and the old refs were already gone when the test looked for them.
    const mirrors = new RepoMirrors(mkdtempSync(path.join(os.tmpdir(), "plangate-reader-")), `http://${fake.host}`, 6000);
    const { mirror, reader } = await mirrors.reader(ref);
    const refs = () => execFileSync("git", [`--git-dir=${mirror}`, "for-each-ref", "--format=%(refname)", "refs/plangate/"]).toString().trim().split("\n").sort();
    try {
      const old = repo.commit({ "old/main.tf": "# old\n" }, "aged", "change", "2020-01-01T00:00:00Z");
      const packedOld = repo.commit({ "old/main.tf": "# older, packed\n" }, "aged-packed", "change", "2020-02-01T00:00:00Z");
      await mirrors.fetchCommits(ref, [packedOld], reader, token);
      execFileSync("git", [`--git-dir=${mirror}`, "pack-refs", "--all"]);
      const recent = repo.commit({ "new/main.tf": "# new\n" }, "fresh");
      await mirrors.fetchCommits(ref, [old, recent], reader, token);
      const { sha: base } = await mirrors.branchHead(ref, "aged", token); // a branch head whose commit is old
      expect(base).toBe(old);
      expect(refs()).toEqual([`refs/plangate/${old}`, `refs/plangate/${packedOld}`, `refs/plangate/${recent}`, "refs/plangate/heads/aged"].sort());
      await waitFor("the old commits' refs dropped", () => refs().length === 2 || undefined, 30_000);
      expect(refs()).toEqual([`refs/plangate/${recent}`, "refs/plangate/heads/aged"].sort());
      // Its objects stay (git keeps unreachable ones two weeks): a later plan of it reads it, fetching nothing.
      const before = gitRequests();
      await mirrors.fetchCommits(ref, [packedOld], reader, token);
      expect(await reader.text(packedOld, "old/main.tf")).toBe("# older, packed\n");
      expect(gitRequests()).toBe(before);
    } finally {
      reader.close();
    }
  });

  test("a fetch says what the mirror has: the second commit's pack holds only what changed, and its ref keeps it", async () => {
    const mirrors = newMirrors();
    const { mirror, reader } = await mirrors.reader(ref);
    const packDir = path.join(mirror, "objects", "pack");
    const newestPackObjects = () => {
      const newest = readdirSync(packDir).filter((f) => f.endsWith(".idx")).map((f) => path.join(packDir, f)).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0]!;
      return execFileSync("git", [`--git-dir=${mirror}`, "show-index"], { input: readFileSync(newest) }).toString().trim().split("\n").length;
    };
    try {
      const big = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`big/f${i}.tf`, `# file ${i}\n`]));
      const first = repo.commit({ ...big, "small/main.tf": "# one\n" }, "haves");
      await mirrors.fetchCommits(ref, [first], reader, token);
      expect(newestPackObjects()).toBeGreaterThan(40);
      const second = repo.commit({ "small/main.tf": "# two\n" }, "haves");
      await mirrors.fetchCommits(ref, [second], reader, token);
      // The new commit, its root tree, small/'s tree and the changed file (a delta, whose base index-pack appends): nothing of big/.
      expect(newestPackObjects()).toBeLessThanOrEqual(5);
      expect(await reader.text(second, "big/f7.tf")).toBe("# file 7\n");
      const refs = execFileSync("git", [`--git-dir=${mirror}`, "for-each-ref", "--format=%(refname) %(objectname)", "refs/plangate/"]).toString();
      expect(refs).toContain(`refs/plangate/${first} ${first}`);
      expect(refs).toContain(`refs/plangate/${second} ${second}`);
    } finally {
      reader.close();
    }
  });

  test("a server that speaks only git's protocol version 0 is fetched from by git itself", async () => {
    const mirrors = newMirrors();
    const { reader } = await mirrors.reader(ref);
    fake.gitProtocolV0Only = true;
    try {
      const sha = repo.commit({ "v0/main.tf": "# v0\n" }, "v0");
      const before = fake.requests.length;
      await mirrors.fetchCommits(ref, [sha], reader, token);
      expect(await reader.text(sha, "v0/main.tf")).toBe("# v0\n");
      // The one-request fetch found no version 2 answer; git then asked for the refs and the pack.
      expect(fake.requests.slice(before).map((r) => `${r.method} ${r.path.replace(/\?.*/, "")}`)).toEqual([
        "POST /Codertocat/Hello-World.git/git-upload-pack",
        "GET /Codertocat/Hello-World.git/info/refs",
        "POST /Codertocat/Hello-World.git/git-upload-pack",
      ]);
    } finally {
      fake.gitProtocolV0Only = false;
      reader.close();
    }
  });
});
