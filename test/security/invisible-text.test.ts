import { jest } from "@jest/globals";
import { escapeInvisible } from "../../src/text/inert-text.js";
import { engineTest, startHarness, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { PullRequests } from "../support/pull-requests.js";

// The attacker: a PR author whose values carry a right-to-left override or invisible characters, so the reviewer reads
// "invoice‮fdp.exe" as "invoiceexe.pdf", or two different values as the same.
jest.setTimeout(180_000);

let h: Harness;
let prs: PullRequests;

beforeAll(async () => {
  h = await startHarness();
  const repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  repo.commit({ "README.md": "root" });
  prs = new PullRequests(h, repo, "Codertocat", 1600);
});
afterAll(async () => h?.close());
afterEach(() => expect(h.fake.unexpected).toEqual([]));

/** Bidirectional controls and invisible characters, as they would reach a reader raw. */
const RAW = /[\u00ad\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]|\udb40[\udc00-\udc7f]/u;
/** The zero-width spaces plangate itself puts after `@`, in `:\u200b//` and `www\u200b.` so no mention or link forms. */
const withoutAutolinkBreaks = (text: string) => text.replace(/@\u200b/g, "@").replace(/:\u200b\/\//g, "://").replace(/www\u200b\./gi, "www.");

// HCL's own escapes: terraform puts the real characters into the plan.
const TF = `resource "terraform_data" "doc" {
  input = {
    file = "invoice\\u202Efdp.exe"
    user = "ad\\u200Bmin"
    iso  = "\\u2066isolated\\u2069 \\uFEFFbom \\u200Ejoin\\u200D"
  }
}
output "attachment" {
  value = "gnp.\\u202Eexe"
}
`;

describe("what a reviewer reads is what is there", () => {
  engineTest("bidi controls and zero-width characters in a plan's values are shown escaped in the comment, the check run and the run page", async () => {
    const p = await prs.open({ "bidi/main.tf": TF }, ["bidi/main.tf"]);
    const plan = prs.check("plangate/plan", p.sha)!;
    expect(plan).toMatchObject({ status: "completed", conclusion: "success" });

    const [comment] = h.fake.commentsOn(prs.full, p.number).map((c) => c.body);
    const check = [plan.output!.title ?? "", plan.output!.summary ?? "", plan.output!.text ?? ""].join("\n");
    for (const posted of [comment!, check]) {
      expect(withoutAutolinkBreaks(posted)).not.toMatch(RAW);
      expect(posted).toContain("invoice\\u202efdp.exe");
    }
    expect(comment).toContain("ad\\u200bmin");
    expect(comment).toContain("\\u2066isolated\\u2069 \\ufeffbom \\u200ejoin\\u200d");
    expect(comment).toContain("gnp.\\u202eexe");

    const page = await fetch(plan.details_url!.replace("localhost", "127.0.0.1"));
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).not.toMatch(RAW); // the page breaks no links with them: none at all
    expect(html).toContain("invoice\\u202efdp.exe");
    expect(html).toContain("ad\\u200bmin");
    expect(html).toContain("gnp.\\u202eexe");
    // The run page's headers (row 15): nothing framed, loaded, sniffed or referred; only its own nonce'd script runs.
    expect(page.headers.get("content-security-policy")).toMatch(/^default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; script-src 'nonce-[\w-]+'$/);
    expect(html).toMatch(/<script nonce="[\w-]+">/);
    expect(html.match(/<script/g)).toHaveLength(1);
    expect(page.headers.get("x-frame-options")).toBe("DENY");
    expect(page.headers.get("referrer-policy")).toBe("no-referrer");
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    await prs.close(p);
  });

  test("escapes every bidi control and invisible character, astral tag characters included; only autolink breaks stay when asked", () => {
    expect(escapeInvisible("a\u202eb\u061cc\u2067d\u200fe\u00adf\u{e0041}g")).toBe("a\\u202eb\\u061cc\\u2067d\\u200fe\\u00adf\\u{e0041}g");
    expect(escapeInvisible("@\u200bbob x\u200by https:\u200b//e www\u200b.e", { keepAutolinkBreaks: true })).toBe("@\u200bbob x\\u200by https:\u200b//e www\u200b.e");
    expect(escapeInvisible("@\u200bbob")).toBe("@\\u200bbob");
    expect(escapeInvisible("plain ✅ ⚠️ text")).toBe("plain ✅ ⚠️ text");
  });
});
