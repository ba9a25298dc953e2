import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parsePlanChanges } from "../../src/plans/changes.js";
import { renderPlanComment } from "../../src/render/plan-comment.js";
import { loadTemplates, type Templates } from "../../src/render/templates.js";
import { engineTest } from "../support/app-harness.js";
import { realPlanJson } from "../support/terraform-plans.js";

/**
 * Expected-output files: real `terraform show -json` documents, made here by
 * real terraform from terraform_data configs, rendered and compared with
 * test/fixtures/render/*.md. A rendering change shows up as a diff of those
 * files; accept it with UPDATE_EXPECTED=1 npm test.
 */
const DIR = "test/fixtures/render";
let templates: Templates;
beforeAll(async () => {
  templates = await loadTemplates();
});

const CASES: Record<string, { before?: string; after: string }> = {
  "nested-objects-and-lists": {
    before: 'resource "terraform_data" "web" {\n  input = { name = "web", ports = [80, 443], tags = { env = "dev", owner = "infra" }, rules = [{ from = 80, to = 80 }] }\n}\n',
    after: 'resource "terraform_data" "web" {\n  input = { name = "web", ports = [80, 8443], tags = { env = "prod", owner = "infra" }, rules = [{ from = 80, to = 80 }, { from = 443, to = 443 }] }\n}\n',
  },
  "multi-line-string": {
    before: 'resource "terraform_data" "script" {\n  input = "#!/bin/sh\\nset -e\\necho one\\necho two\\n"\n}\n',
    after: 'resource "terraform_data" "script" {\n  input = "#!/bin/sh\\nset -eu\\necho one\\necho 2\\n"\n}\n',
  },
  "sensitive-input": {
    after: 'variable "token" {\n  type      = string\n  sensitive = true\n  default   = "tok-very-secret"\n}\nresource "terraform_data" "api" {\n  input = { token = var.token, url = "https://api.example.com" }\n}\n',
  },
  "unknown-values": {
    after: 'resource "terraform_data" "first" {\n  input = "a"\n}\nresource "terraform_data" "second" {\n  input = { from_first = terraform_data.first.output, fixed = 1 }\n}\n',
  },
  "replace-and-destroy": {
    before: 'resource "terraform_data" "db" {\n  input = "postgres"\n  triggers_replace = ["v1"]\n}\nresource "terraform_data" "old" {\n  input = "legacy"\n}\n',
    after: 'resource "terraform_data" "db" {\n  input = "postgres"\n  triggers_replace = ["v2"]\n}\n',
  },
  "moved-block": {
    before: 'resource "terraform_data" "old_name" {\n  input = "kept"\n}\n',
    after: 'resource "terraform_data" "new_name" {\n  input = "kept"\n}\nmoved {\n  from = terraform_data.old_name\n  to   = terraform_data.new_name\n}\n',
  },
  "output-change": {
    before: 'resource "terraform_data" "x" {\n  input = "1"\n}\noutput "endpoint" {\n  value = "https://old.example.com"\n}\noutput "gone" {\n  value = "bye"\n}\n',
    after: 'resource "terraform_data" "x" {\n  input = "1"\n}\noutput "endpoint" {\n  value = "https://new.example.com"\n}\noutput "id" {\n  value = terraform_data.x.id\n}\noutput "secret" {\n  value     = "s3cr3t-value"\n  sensitive = true\n}\n',
  },
  "import-and-update": {
    after: 'import {\n  to = terraform_data.adopted\n  id = "adopted-1"\n}\nresource "terraform_data" "adopted" {\n  input = "configured"\n}\nimport {\n  to = terraform_data.as_is\n  id = "as-is-1"\n}\nresource "terraform_data" "as_is" {}\n',
  },
};

/** Random ids terraform assigns differ on every run. */
const normalise = (text: string) => text.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, "<uuid>");

describe("rendering corpus (expected-output files)", () => {
  for (const [name, { before, after }] of Object.entries(CASES)) {
    engineTest(name, () => {
      const changes = parsePlanChanges(realPlanJson(after, before));
      const parts = renderPlanComment(templates, { repo: "o/r", sha: "0123456789abcdef0123456789abcdef01234567", projects: [{ name: "corpus", workspace: "default", status: "succeeded", changes }] });
      expect(parts).toHaveLength(1);
      const rendered = normalise(parts[0]!);
      const file = path.join(DIR, `${name}.md`);
      if (process.env.UPDATE_EXPECTED || !existsSync(file)) {
        mkdirSync(DIR, { recursive: true });
        writeFileSync(file, rendered);
        if (!process.env.UPDATE_EXPECTED) throw new Error(`${file} was missing and has been written: check it and commit it`);
      }
      expect(rendered).toBe(readFileSync(file, "utf8"));
      expect(rendered).not.toContain("tok-very-secret");
      expect(rendered).not.toContain("s3cr3t-value");
    });
  }
});
