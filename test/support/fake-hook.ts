import { createHmac, randomUUID } from "node:crypto";
import { signBody } from "./webhooks.js";

/** One attempt in the App's delivery log, as GET /app/hook/deliveries lists it. */
export interface HookAttempt {
  id: number;
  guid: string;
  delivered_at: string;
  redelivery: boolean;
  duration: number;
  status: string;
  status_code: number;
  event: string;
  action: string | null;
  installation_id: number | null;
  repository_id: number | null;
}

/** GitHub's timeout on a webhook delivery. */
const DELIVERY_TIMEOUT_MS = 10_000;
/** GitHub lists at most 100 deliveries a page. */
const MAX_PER_PAGE = 100;

/**
 * The App's webhook as GitHub sends it: each delivery is signed with the App's
 * webhook secret, POSTed to its URL and logged as an attempt with what it got
 * (GET /app/hook/deliveries); a redelivery (POST /app/hook/deliveries/:id/attempts)
 * sends the same body again with the same guid, after GitHub has answered 202,
 * and is logged as a new attempt. GitHub never retries a failed attempt by itself.
 */
export class FakeHook {
  /** Where the App's webhooks go, and the secret they are signed with (the App's settings); unset: nothing is sent. */
  target?: { url: string; secret: string };
  /** Every attempt, oldest first. */
  readonly attempts: HookAttempt[] = [];
  /** The ids of the attempts redelivery was asked for, in order. */
  readonly redeliveryRequests: number[] = [];
  private readonly bodies = new Map<string, { event: string; body: string }>();
  private readonly sending = new Set<Promise<HookAttempt>>();
  private nextId = 90_000_001;

  /** Delivers a new event (a new guid) as GitHub does; resolves with its logged attempt. */
  send(event: string, payload: Record<string, any>): Promise<HookAttempt> {
    const guid = randomUUID();
    this.bodies.set(guid, { event, body: JSON.stringify(payload) });
    return this.attempt(guid, false);
  }

  /** Asks for an attempt to be sent again, as the API or the App's settings page does: false for an unknown id. */
  redeliver(id: number): boolean {
    const attempt = this.attempts.find((a) => a.id === id);
    if (!attempt) return false;
    this.redeliveryRequests.push(id);
    const sent = this.attempt(attempt.guid, true);
    this.sending.add(sent);
    void sent.finally(() => this.sending.delete(sent));
    return true;
  }

  /** Resolves once every redelivery asked for has been sent and logged. */
  async idle(): Promise<void> {
    while (this.sending.size) await Promise.allSettled([...this.sending]);
  }

  /** One page of the log, newest first, and the cursor of the next page (GitHub's cursor pagination). */
  list(url: URL): { items: HookAttempt[]; cursor?: string } {
    const perPage = Math.min(MAX_PER_PAGE, Number(url.searchParams.get("per_page") ?? 30));
    const before = /^v1_(\d+)$/.exec(url.searchParams.get("cursor") ?? "")?.[1];
    const older = [...this.attempts].reverse().filter((a) => !before || a.id < Number(before));
    const items = older.slice(0, perPage);
    return { items, cursor: older.length > perPage ? `v1_${items.at(-1)!.id}` : undefined };
  }

  private async attempt(guid: string, redelivery: boolean): Promise<HookAttempt> {
    const { event, body } = this.bodies.get(guid)!;
    const target = this.target;
    if (!target) throw new Error("FakeHook.target is not set: where would GitHub send the webhook?");
    const parsed = JSON.parse(body) as { action?: string; installation?: { id?: number }; repository?: { id?: number } };
    const started = Date.now();
    // GitHub logs whole seconds.
    const deliveredAt = new Date(Math.floor(started / 1000) * 1000).toISOString().replace(".000Z", "Z");
    let statusCode = 0;
    let status = "failed to connect";
    try {
      const response = await fetch(target.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "user-agent": "GitHub-Hookshot/fake",
          "x-github-event": event,
          "x-github-delivery": guid,
          "x-github-hook-id": "1",
          "x-github-hook-installation-target-type": "integration",
          "x-hub-signature": `sha1=${createHmac("sha1", target.secret).update(body).digest("hex")}`,
          "x-hub-signature-256": signBody(target.secret, body),
        },
        body,
        signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
      });
      await response.arrayBuffer();
      statusCode = response.status;
      status = statusCode >= 200 && statusCode < 300 ? "OK" : `Invalid HTTP Response: ${statusCode}`;
    } catch (error) {
      if ((error as Error).name === "TimeoutError") status = "timed out";
    }
    const logged: HookAttempt = {
      id: this.nextId++,
      guid,
      delivered_at: deliveredAt,
      redelivery,
      duration: (Date.now() - started) / 1000,
      status,
      status_code: statusCode,
      event,
      action: parsed.action ?? null,
      installation_id: parsed.installation?.id ?? null,
      repository_id: parsed.repository?.id ?? null,
    };
    this.attempts.push(logged);
    return logged;
  }
}
