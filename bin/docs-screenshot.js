// Takes docs/screenshots/plan-comment.png (`npm run docs:screenshot`): a real terraform plan
// (built-in terraform_data only, local state) rendered by plangate's own comment renderer
// (dist/render), turned into HTML by a GitHub-flavoured Markdown renderer with GitHub's
// stylesheet, and photographed in Debian's chromium. Needs terraform and /usr/bin/chromium.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Marked } from "marked";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const require = createRequire(import.meta.url);

const escapeHtml = (text) => text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

/** GitHub's alert blockquotes (`> [!CAUTION]`), which plain GFM renders as quotes. */
const ALERTS = { NOTE: "Note", TIP: "Tip", IMPORTANT: "Important", WARNING: "Warning", CAUTION: "Caution" };

const marked = new Marked({
  gfm: true,
  renderer: {
    // GitHub colours a ```diff block's added and removed lines.
    code({ text, lang }) {
      const lines = escapeHtml(text).split("\n");
      const body = lang === "diff" ? lines.map((l) => (l.startsWith("+") ? `<span class="pl-mi1">${l}</span>` : l.startsWith("-") ? `<span class="pl-md">${l}</span>` : l)).join("\n") : lines.join("\n");
      return `<div class="highlight highlight-source-${lang || "text"}"><pre>${body}</pre></div>\n`;
    },
    blockquote({ tokens }) {
      const html = this.parser.parse(tokens);
      const alert = /^<p>\[!(NOTE|TIP|IMPORTANT|WARNING|CAUTION)\]\s*/.exec(html);
      if (!alert) return `<blockquote>\n${html}</blockquote>\n`;
      const kind = alert[1];
      return `<div class="markdown-alert markdown-alert-${kind.toLowerCase()}"><p class="markdown-alert-title">${ALERTS[kind]}</p><p>${html.slice(alert[0].length)}</div>\n`;
    },
  },
});

/**
 * A self-contained HTML page showing `markdown` as a comment by plangate's bot on a
 * GitHub pull request: GitHub's markdown stylesheet, and the first `<details>` open.
 */
export function commentPage(markdown, { author = "plangate", open = true } = {}) {
  const css = readFileSync(require.resolve("github-markdown-css/github-markdown-light.css"), "utf8");
  let body = marked.parse(markdown);
  if (open) body = body.replace("<details>", "<details open>");
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>plangate plan comment</title>
<style>${css}</style>
<style>
  body { margin: 0; padding: 16px; background: #fff; font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif, "Noto Color Emoji"; }
  .comment { display: flex; gap: 12px; max-width: 860px; }
  .avatar { width: 40px; height: 40px; border-radius: 6px; background: #1f6feb; color: #fff; font: 600 20px/40px sans-serif; text-align: center; flex: none; }
  .box { flex: 1; border: 1px solid #d1d9e0; border-radius: 6px; overflow: hidden; }
  .header { background: #f6f8fa; border-bottom: 1px solid #d1d9e0; padding: 8px 16px; font-size: 14px; color: #59636e; }
  .header b { color: #1f2328; }
  .label { border: 1px solid #d1d9e0; border-radius: 2em; padding: 0 7px; font-size: 12px; margin-left: 4px; }
  .markdown-body { padding: 16px; font-size: 14px; }
  .markdown-body .markdown-alert.markdown-alert-caution { border-left-color: #d1242f; }
  .markdown-body .markdown-alert-caution .markdown-alert-title { color: #d1242f; font-weight: 500; }
</style></head>
<body><div class="comment"><div class="avatar">p</div><div class="box">
<div class="header"><b>${escapeHtml(author)}</b> <span class="label">bot</span> commented</div>
<div class="markdown-body">
${body}</div></div></div></body></html>
`;
}

/** The plan shown (test/fixtures/render/showcase, shared with test/integration/render-real-plans.test.ts). */
const fixture = (name) => readFileSync(path.join(root, "test/fixtures/render/showcase", name), "utf8");

/** `terraform show -json` of the change from before.tf to after.tf, planned for real in a temporary directory. */
function realPlanJson() {
  const dir = mkdtempSync(path.join(os.tmpdir(), "plangate-docs-plan-"));
  const tf = (...args) =>
    execFileSync(process.env.PLANGATE_TERRAFORM_BIN || "terraform", args, {
      cwd: dir,
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
      stdio: ["ignore", "pipe", "pipe"],
      env: { PATH: process.env.PATH, HOME: dir, TF_IN_AUTOMATION: "1", TF_CLI_CONFIG_FILE: path.join(dir, "none.tfrc") },
    });
  try {
    writeFileSync(path.join(dir, "none.tfrc"), "");
    writeFileSync(path.join(dir, "main.tf"), fixture("before.tf"));
    tf("init", "-input=false", "-no-color");
    tf("apply", "-auto-approve", "-input=false", "-no-color");
    writeFileSync(path.join(dir, "main.tf"), fixture("after.tf"));
    tf("plan", "-input=false", "-no-color", "-out=tfplan");
    return JSON.parse(tf("show", "-json", "tfplan"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  const { parsePlanChanges } = await import(pathToFileURL(path.join(root, "dist/plans/changes.js")).href);
  const { renderPlanComment } = await import(pathToFileURL(path.join(root, "dist/render/plan-comment.js")).href);
  const { loadTemplates } = await import(pathToFileURL(path.join(root, "dist/render/templates.js")).href);
  const changes = parsePlanChanges(realPlanJson());
  const report = { repo: "acme/infra", sha: "4f9c2e1b7a0d3c5e8f1a2b3c4d5e6f708192a3b4", projects: [{ name: "network", workspace: "default", status: "succeeded", changes }] };
  const [markdown] = renderPlanComment(await loadTemplates(), report);
  const html = commentPage(markdown);
  const { chromium } = await import("playwright-core");
  const profile = mkdtempSync(path.join(os.tmpdir(), "plangate-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"], viewport: { width: 900, height: 800 }, deviceScaleFactor: 1 });
  try {
    const page = await context.newPage();
    await page.setContent(html, { waitUntil: "load" });
    const out = path.join(root, "docs/screenshots/plan-comment.png");
    await page.locator(".comment").screenshot({ path: out });
    console.error(`wrote ${path.relative(root, out)}`);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
