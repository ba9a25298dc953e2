import { EventEmitter } from "node:events";
import { makeWorkerUtils, type WorkerEvents } from "graphile-worker";
import { beat, forgetSilentWorkers, forgetWorkers, silentLockHolders } from "../db/heartbeats.js";
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
    // graphile-worker 0.17 locks jobs in the name of the pool (locked_by = pool id), not of its workers: beat for both.
    this.events.on("pool:create", ({ workerPool }) => this.workerIds.add(workerPool.id));
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
    await forgetWorkers(this.pool, [...this.workerIds]);
  }

  async tick(): Promise<void> {
    await beat(this.pool, [...this.workerIds]);
    const stale = `${Math.ceil(this.staleAfterMs)} milliseconds`;
    const dead = (await silentLockHolders(this.pool, stale)).filter((id) => !this.workerIds.has(id));
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
    await forgetSilentWorkers(this.pool, stale);
  }
}
