import { jest } from "@jest/globals";
import { engineTest, startHarness, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { PullRequests } from "../support/pull-requests.js";

jest.setTimeout(180_000);

let h: Harness;
let prs: PullRequests;

beforeAll(async () => {
  // No PLANGATE_PUBLIC_URL: run pages are served at http://localhost:PORT.
  h = await startHarness();
  const repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  repo.commit({ "README.md": "root" });
  prs = new PullRequests(h, repo, "Codertocat", 980);
});
afterAll(async () => h?.close());
afterEach(() => expect(h.fake.unexpected).toEqual([]));

describe("run pages", () => {
  engineTest("without PLANGATE_PUBLIC_URL every check run links its run page on localhost, which shows diffs, outputs, policy results, the log and a filter", async () => {
    const config = "version: 1\npolicies:\n  - deny: create\n    addresses: ['terraform_data.forbidden']\n";
    const tf = 'resource "terraform_data" "forbidden" {\n  input = "no"\n}\nresource "terraform_data" "fine" {\n  input = "yes"\n}\noutput "greeting" {\n  value = "hello"\n}\n';
    const p = await prs.open({ ".plangate.yml": config, "rp/main.tf": tf }, ["rp/main.tf"]);
    const plan = prs.check("plangate/plan", p.sha)!;
    const approval = prs.check("plangate/approval", p.sha)!;
    expect(plan.details_url).toMatch(new RegExp(`^http://localhost:${h.app.port}/runs/\\d+\\?expires=\\d+&token=`));
    expect(approval.details_url?.split("?")[0]).toBe(plan.details_url!.split("?")[0]); // the same run page (each link signed when made)
    const html = await (await fetch(plan.details_url!.replace("localhost", "127.0.0.1"))).text();
    expect(html).toContain('<input class="filter" id="filter" type="search" placeholder="Filter resources by address"');
    expect(html).toContain('<section class="resource" data-address="terraform_data.forbidden">');
    expect(html).toContain('<section class="resource" data-address="terraform_data.fine">');
    expect(html).toContain("<h3>Policy results</h3>");
    expect(html).toContain("policy 1 denies create");
    expect(html).toContain("<h3>Outputs</h3>");
    expect(html).toMatch(/greeting/);
    expect(html).toContain("terraform output (the log)");
    expect(html).toContain(`<p>Codertocat/Hello-World · pull request <a class="gh" href="${h.settings.githubWebUrl}/Codertocat/Hello-World/pull/${p.number}">#${p.number}</a> · commit <code>${p.sha}</code>`);
    // Under the dashboard's navigation, with a way back to all runs.
    expect(html).toMatch(/<header id="nav">\s*<span class="brand">plangate<\/span>\s*<a href="\/" class="on">Runs<\/a>/);
    expect(html).toContain('<a id="all-runs" href="/">← All runs</a>');
    await prs.close(p);
  });
});
