import type { Probot } from "probot";
import type { Pool } from "./db/pool.js";
import { ignore, type Decision } from "./handlers/decision.js";
import { onPullRequest } from "./handlers/pull-request.js";
import { recordAndEnqueue } from "./handlers/record-delivery.js";

export interface AppDeps {
  pool: Pool;
}

type Decide = (payload: never, deliveryId: string) => Decision;

const DECIDERS: Record<string, Decide> = {
  pull_request: onPullRequest as Decide,
};

/** The Probot app: every delivery is recorded and turned into jobs; nothing slow happens here. */
export function plangateApp(deps: AppDeps) {
  return (app: Probot) => {
    app.onAny(async (context) => {
      const decide = DECIDERS[context.name];
      const decision = decide ? decide(context.payload as never, context.id) : ignore(`event ${context.name}`);
      const fresh = await recordAndEnqueue(deps.pool, { id: context.id, event: context.name, payload: context.payload as never }, decision);
      app.log.debug({ deliveryId: context.id, outcome: decision.outcome, duplicate: !fresh }, "delivery recorded");
    });
  };
}
