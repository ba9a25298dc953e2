import { EventEmitter } from "node:events";
import { makeWorkerUtils, type WorkerEvents } from "graphile-worker";
import type { Pool } from "../db/pool.js";
import type { Logger } from "./deps.js";

/**
 * Crash recovery for the job queue. Each process records its queue workers'
 * heartbeats; any process unlocks the jobs held by workers that stopped
 * beating, so a job of a killed process is retried (graphile-worker alone
 * waits four hours). Apply jobs detect the retry and never apply twice.
 */
export class Heartbeat {
  readonly events: WorkerEvents = new EventEmitter() as WorkerEvents;
  private readonly workerIds = new Set<string>();
  private timer?: NodeJS.Timeout;
  private ticks = 0;

  constructor(
    private readonly pool: Pool,
    private readonly staleAfterMs: number,
    private readonly log: Logger,
  ) {
    this.events.on("worker:create", ({ worker }) => this.workerIds.add(worker.workerId));
  }

  start(): void {
    const every = Math.max(200, Math.floor(this.staleAfterMs / 4));
    this.timer = setInterval(() => void this.tick().catch((err) => this.log.warn({ err }, "heartbeat failed")), every);
    this.timer.unref();
    void this.tick().catch(() => undefined);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.pool.query("delete from worker_heartbeats where worker_id = any($1)", [[...this.workerIds]]);
  }

  async tick(): Promise<void> {
    const ids = [...this.workerIds];
    if (ids.length) {
      await this.pool.query(
        "insert into worker_heartbeats (worker_id) select unnest($1::text[]) on conflict (worker_id) do update set seen_at = now()",
        [ids],
      );
    }
    const stale = `${Math.ceil(this.staleAfterMs)} milliseconds`;
    const { rows } = await this.pool.query<{ locked_by: string }>(
      `select distinct j.locked_by from graphile_worker.jobs j
        where j.locked_by is not null and j.locked_at < now() - $1::interval
          and not exists (select 1 from worker_heartbeats h where h.worker_id = j.locked_by and h.seen_at > now() - $1::interval)`,
      [stale],
    );
    const dead = rows.map((r) => r.locked_by).filter((id) => !this.workerIds.has(id));
    // Queue names are per PR and per project: empty queues are collected now and then.
    const collect = this.ticks++ % 240 === 0;
    if (dead.length || collect) {
      const utils = await makeWorkerUtils({ pgPool: this.pool });
      try {
        if (dead.length) await utils.forceUnlockWorkers(dead);
        if (collect) await utils.cleanup({ tasks: ["GC_JOB_QUEUES"] });
      } finally {
        await utils.release();
      }
      if (dead.length) this.log.warn({ workers: dead }, "unlocked the jobs of stopped workers: they will be retried");
    }
    await this.pool.query("delete from worker_heartbeats where seen_at < now() - ($1::interval * 10)", [stale]);
  }
}
