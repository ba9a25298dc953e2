import { parseComment } from "../commands/parse-command.js";
import { pullQueue, TASKS, type CommandPayload, type NoticePayload } from "../jobs/jobs.js";
import { commandProblemText } from "../render/command-problem.js";
import type { Templates } from "../render/templates.js";
import { ignore, type Decision } from "./decision.js";

export interface IssueCommentEvent {
  action: string;
  installation?: { id: number };
  repository: { name: string; owner: { login: string }; full_name: string };
  issue: { number: number; pull_request?: unknown };
  comment: { id: number; body: string; user: { login: string; type?: string } | null };
  sender: { login: string; type?: string };
}

/** Comment commands on pull requests: parsed here (pure), authorised and run by a worker. */
export function onIssueComment(templates: Templates, event: IssueCommentEvent, deliveryId: string): Decision {
  if (event.action !== "created") return ignore(`action ${event.action}`);
  if (!event.issue.pull_request) return ignore("not a pull request");
  if (!event.installation) return ignore("no installation");
  if (event.sender.type === "Bot" || event.comment.user?.type === "Bot") return ignore("bot comment");
  const parsed = parseComment(event.comment.body ?? "");
  if (parsed.kind === "none") return ignore("not a command");
  const base = { installationId: event.installation.id, owner: event.repository.owner.login, repo: event.repository.name, number: event.issue.number };
  const queueName = pullQueue(event.repository.full_name, event.issue.number);
  if (parsed.kind === "invalid") {
    const line = event.comment.body.split(/\r?\n/, 1)[0]!.trim().slice(0, 200);
    const payload: NoticePayload = { ...base, body: templates.render("usage", { problem: commandProblemText(templates, parsed.problem), line, command: parsed.command }) };
    return { outcome: "rejected:usage", jobs: [{ task: TASKS.notice, payload }] };
  }
  const payload: CommandPayload = {
    ...base,
    trigger: deliveryId,
    commentId: event.comment.id,
    actor: event.comment.user?.login ?? event.sender.login,
    command: parsed.command,
    selector: parsed.selector,
    ...(parsed.override ? { override: parsed.override } : {}),
  };
  return { outcome: `enqueued:${parsed.command}`, jobs: [{ task: TASKS.command, payload, queueName, jobKey: `command:${deliveryId}` }] };
}
