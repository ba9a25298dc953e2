import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { RepoMirrors } from "../../src/github/repo-mirror.js";
import { loadProjects } from "../../src/worker/plan/load-projects.js";
import { FakeGitHub } from "../support/fake-github.js";
import { GitRepo } from "../support/git-repo.js";

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
      // Commits asked for by id: git lists no refs (two requests: capabilities, then the pack).
      expect(gitRequests() - before).toBe(2);
      expect(await reader.holds(first)).toBe(true);
      expect(await reader.text(first, "p/main.tf")).toBe("# one\n");
      const second = repo.commit({ "p/main.tf": "# two\n" }, "fetches");
      const again = gitRequests();
      await mirrors.fetchCommits(ref, [first, second], reader, token);
      expect(gitRequests() - again).toBe(2); // only the missing one
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
    await expect(mirrors.fetchCommits(ref, ["0123456789abcdef0123456789abcdef01234567"], reader, token)).rejects.toThrow(/git fetch failed: .+/);
    await expect(mirrors.fetchCommits(ref, ["not-a-sha"], reader, token)).rejects.toThrow("refusing unexpected commit");
    reader.close();
    await expect(reader.files("0123456789abcdef0123456789abcdef01234567")).rejects.toThrow(/git cat-file ended/);
  });
});
