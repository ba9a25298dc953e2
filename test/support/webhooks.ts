import { createHmac, randomUUID } from "node:crypto";
import http from "node:http";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const index = require("@octokit/webhooks-examples/api.github.com/index.json") as { name: string; examples: Record<string, unknown>[] }[];

/** The default branch of the repositories tests make (GitRepo): pull requests merge into it. */
export const TEST_BASE_BRANCH = "main";

/**
 * A deep copy of a real example payload from @octokit/webhooks-examples for
 * event/action, with an installation added where the example lacks one, and a
 * pull request's base branch set to the test repositories' (the examples say master).
 */
export function examplePayload<T = Record<string, any>>(event: string, action: string): T {
  const examples = index.find((e) => e.name === event)?.examples.filter((e) => e.action === action) ?? [];
  const example = examples.find((e) => e.installation) ?? examples[0];
  if (!example) throw new Error(`no example payload for ${event}.${action}`);
  const copy = structuredClone(example) as Record<string, any>;
  copy.installation ??= { id: 424242, node_id: "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNDI0MjQy" };
  if (copy.pull_request?.base) copy.pull_request.base.ref = TEST_BASE_BRANCH;
  if (copy.pull_request?.base?.repo) copy.pull_request.base.repo.default_branch = TEST_BASE_BRANCH;
  if (copy.repository) copy.repository.default_branch = TEST_BASE_BRANCH;
  return copy as T;
}

export const signBody = (secret: string, body: string) => `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;

export interface Delivered {
  status: number;
  text: string;
  id: string;
}

/**
 * POSTs a payload to the app's webhook endpoint the way GitHub does, signed
 * with `secret`, on a connection of its own as GitHub's deliveries come (a
 * kept-alive one could be closed by the server, idle past its timeout, just
 * as it is reused: ECONNRESET on a loaded machine).
 */
export function deliver(baseUrl: string, event: string, payload: unknown, secret: string, id: string = randomUUID()): Promise<Delivered> {
  const body = JSON.stringify(payload);
  const headers = { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)), "x-github-event": event, "x-github-delivery": id, "x-hub-signature-256": signBody(secret, body) };
  return new Promise((resolve, reject) => {
    const request = http.request(new URL(`${baseUrl}/api/github/webhooks`), { method: "POST", headers, agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => resolve({ status: response.statusCode!, text: Buffer.concat(chunks).toString("utf8"), id }));
      response.on("error", reject);
    });
    request.on("error", reject);
    request.end(body);
  });
}
