import { loadTemplates, type Templates } from "../../src/render/templates.js";
import { githubWebBase, readSettings } from "../../src/settings/settings.js";
import { githubNumberUrl } from "../../src/web/github-links.js";

/** The dashboard's and the run page's links from a PR or issue number to GitHub. */

let templates: Templates;
beforeAll(async () => {
  templates = await loadTemplates();
});

describe("GitHub's web address (githubWebBase)", () => {
  test("github.com without GHE_HOST; the GHE server's protocol and host with it", () => {
    expect(githubWebBase()).toBe("https://github.com");
    expect(githubWebBase(undefined, "http")).toBe("https://github.com");
    expect(githubWebBase("ghe.example.com")).toBe("https://ghe.example.com");
    expect(githubWebBase("ghe.example.com:8080", "http")).toBe("http://ghe.example.com:8080");
  });

  test("the settings' githubWebUrl is that address", () => {
    expect(readSettings({}).githubWebUrl).toBe(githubWebBase());
    expect(readSettings({ GHE_HOST: "ghe.example.com", GHE_PROTOCOL: "http" }).githubWebUrl).toBe("http://ghe.example.com");
    expect(readSettings({ GHE_HOST: "ghe.example.com" }).githubApiUrl).toBe("https://ghe.example.com/api/v3");
  });
});

describe("links to pull requests and issues (githubNumberUrl)", () => {
  test("a pull request or an issue of a repository, under the web address", () => {
    expect(githubNumberUrl("https://github.com", "Codertocat/Hello-World", "pull", 12)).toBe("https://github.com/Codertocat/Hello-World/pull/12");
    expect(githubNumberUrl("http://ghe.example.com:8080", "acme/infra.live_2", "issues", 7)).toBe("http://ghe.example.com:8080/acme/infra.live_2/issues/7");
  });

  test.each([
    ["no number", "acme/infra", null],
    ["a zero", "acme/infra", 0],
    ["a fraction", "acme/infra", 1.5],
    ["no owner", "infra", 3],
    ["a third segment", "acme/infra/extra", 3],
    ["a dot-dot name", "acme/..", 3],
    ["markup", 'acme/x"><script>alert(1)</script>', 3],
    ["a scheme", "javascript:alert(1)//x/y", 3],
    ["a query", "acme/infra?x=1", 3],
    ["a space", "acme/in fra", 3],
  ])("no link for %s", (_case, repo, number) => {
    expect(githubNumberUrl("https://github.com", repo, "pull", number)).toBeUndefined();
  });

  test("a hostile repository name on a page shows as text: no markup, no link but to GitHub", () => {
    const hostile = 'acme/x"><img src=x onerror=alert(1)>';
    const scheme = "javascript:alert(1)//";
    const runs = [hostile, scheme].map((repo, i) => ({
      id: i + 1, kind: "plan", repo, pull_number: 5, shortSha: "abcdef0", projects: [], outcome: "succeeded", at: "now", link: "/runs/1",
      prUrl: githubNumberUrl("https://github.com", repo, "pull", 5),
    }));
    const good = { ...runs[0]!, repo: "acme/infra", prUrl: githubNumberUrl("https://github.com", "acme/infra", "pull", 5) };
    const html = templates.render("dashboard-runs", { title: "Runs", pages: true, user: "alice", runs: [...runs, good], repos: [], filter: {}, outcomes: [] });
    expect(html).not.toContain("<img");
    expect(html).toContain("acme/x&quot;&gt;&lt;img src&#x3D;x onerror&#x3D;alert(1)&gt;");
    const hrefs = [...html.matchAll(/href="([^"]*)"/g)].map((m) => m[1]);
    expect(hrefs.filter((h) => /^[a-z]+:/i.test(h!))).toEqual(["https://github.com/acme/infra/pull/5"]);
    expect(hrefs.some((h) => h!.toLowerCase().includes("javascript"))).toBe(false);
  });
});
