import type { Probot } from "probot";
import type { AppHookDeliveries, HookDelivery } from "./github.js";
import { GITHUB_DELIVERIES_PER_PAGE } from "./limits.js";

type Octokit = Awaited<ReturnType<Probot["auth"]>>;

/** The App's webhook delivery log, through the App-authenticated (JWT) Octokit: it honours GHE_HOST. */
export function octokitHookDeliveries(appOctokit: () => Promise<Octokit>): AppHookDeliveries {
  return {
    async deliveriesSince(since: Date): Promise<HookDelivery[]> {
      const app = await appOctokit();
      const found: HookDelivery[] = [];
      // GitHub lists the newest first, each page naming the next by a cursor: paging stops at the first page that reaches back past `since`.
      for await (const { data } of app.paginate.iterator(app.rest.apps.listWebhookDeliveries, { per_page: GITHUB_DELIVERIES_PER_PAGE })) {
        let reachedBack = false;
        for (const d of data) {
          const deliveredAt = new Date(d.delivered_at);
          if (deliveredAt < since) reachedBack = true;
          else found.push({ id: d.id, guid: d.guid, statusCode: d.status_code, deliveredAt, redelivery: d.redelivery, event: d.event, action: d.action ?? null });
        }
        if (reachedBack) break;
      }
      return found;
    },
    async redeliver(deliveryId: number): Promise<void> {
      const app = await appOctokit();
      await app.rest.apps.redeliverWebhookDelivery({ delivery_id: deliveryId });
    },
  };
}
