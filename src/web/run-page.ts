import type { IncomingMessage, ServerResponse } from "node:http";
import type { Pool } from "../db/pool.js";
import { loadGroupResults } from "../db/plan-report.js";
import { getGroupOrUndefined } from "../db/run-groups.js";
import type { ResourceChange } from "../plans/changes.js";
import { applyTimeText, provisionerCount } from "../render/apply-time-text.js";
import { attributeDiff, outputDiff } from "../render/attribute-diff.js";
import { ACTION_SYMBOLS, planReportOf, reportView } from "../render/plan-report.js";
import type { Templates } from "../render/templates.js";
import { pageHeaders, scriptNonce, sendHtml } from "./html-response.js";
import { githubNumberUrl } from "./github-links.js";
import type { RunLinks } from "./run-links.js";

const PATH = /^\/runs\/(\d+)$/;

function notFound(res: ServerResponse): true {
  res.writeHead(404, { ...pageHeaders(), "content-type": "text/plain; charset=utf-8" }).end("Not found\n");
  return true;
}

/**
 * GET /runs/:id?expires=…&token=…: the whole plan (every resource diff) and
 * terraform's output as HTML, under the dashboard's navigation; its PR links
 * to GitHub's web at `githubWebUrl`. Without a valid, unexpired token: 404.
 */
export function runPageHandler(pool: Pool, links: RunLinks, templates: Templates, githubWebUrl: string) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const url = new URL(req.url ?? "/", "http://plangate");
    const match = PATH.exec(url.pathname);
    if (!match || req.method !== "GET") return false;
    const groupId = Number(match[1]);
    if (!links.verify(groupId, Number(url.searchParams.get("expires")), url.searchParams.get("token") ?? "")) return notFound(res);
    const group = await getGroupOrUndefined(pool, groupId);
    if (!group) return notFound(res);
    const results = await loadGroupResults(pool, groupId);
    const { runs } = results;
    const report = planReportOf(results);
    const view = reportView(templates, report);
    const diffLines = (text: string) => text.split("\n").map((line) => ({ text: line, cls: line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : "" }));
    const resourceView = (change: ResourceChange) => ({ address: change.address, label: ACTION_SYMBOLS[change.action], lines: diffLines(attributeDiff(change)) });
    const projects = view.projects.map((p, i) => ({
      ...p,
      output: runs[i]!.output,
      status: runs[i]!.status,
      resources: (p.changes?.resources ?? []).map(resourceView),
      drift: (p.changes?.drift ?? []).map(resourceView),
      outputs: p.changes?.outputs?.length ? diffLines(outputDiff(p.changes.outputs)) : undefined,
      violations: p.failure?.violations ?? [],
      applyTime: p.changes?.applyTime?.length ? { count: provisionerCount(p.changes.applyTime), text: applyTimeText(p.changes.applyTime) } : undefined,
    }));
    const outcome = group.outcome && group.outcome.result === "refused" ? group.outcome : undefined;
    const nonce = scriptNonce();
    const html = templates.render("run-page", { ...view, projects, repo: group.repo, kind: group.kind, sha: group.sha, pullNumber: group.pull_number, prUrl: githubNumberUrl(githubWebUrl, group.repo, "pull", group.pull_number), outcome: group.outcome?.result, refusal: outcome?.code, nonce });
    return sendHtml(res, 200, html, pageHeaders(nonce));
  };
}
