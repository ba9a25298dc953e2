import pg from "pg";
import { isDatabaseUnavailable } from "./unavailable.js";

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
/** Anything that can run a query: the pool or a client inside a transaction. */
export type Queryable = Pick<pg.Pool, "query">;

// bigint columns (ids) come back as JS numbers; they stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

/** `min`: connections kept open however long they idle (see warmPool); past it, an idle one closes after 10 s. */
export function createPool(connectionString: string, max = 10, min = 0): Pool {
  const pool = new pg.Pool({ connectionString, max, min: Math.min(min, max) });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  const lost = (error: Error) => console.error(`[db] connection lost: ${error.message}`);
  pool.on("error", lost);
  pool.on("connect", (client) => client.on("error", lost));
  // graphile-worker takes its clients with connect() and, when writing a job's
  // completion or failure, waits out only the errors it knows as transient
  // (57P03 "cannot connect now" among them, not ECONNREFUSED): any other error
  // there is an unhandled rejection that ends the process. A database that is
  // down or restarting is reported to it as 57P03, which it retries (3 s to 2 min apart).
  const connect = pool.connect.bind(pool);
  pool.connect = ((callback?: Parameters<typeof connect>[0]) =>
    callback ? connect(callback) : connect().catch((error: Error & { code?: string }) => {
      if (isDatabaseUnavailable(error)) error.code = "57P03";
      throw error;
    })) as typeof pool.connect;
  return pool;
}

/**
 * Opens the pool's `min` connections now, each answering one query, so a
 * fresh process's first transactions (the first webhook's record, the first
 * plan's) do not each wait for a new connection and a new server backend.
 * The pool keeps them open (createPool's `min`).
 */
export async function warmPool(pool: Pool): Promise<void> {
  const clients = await Promise.all(Array.from({ length: pool.options.min ?? 0 }, () => pool.connect()));
  try {
    await Promise.all(clients.map((client) => client.query("select 1")));
  } finally {
    for (const client of clients) client.release();
  }
}

/** Runs fn in a transaction on one client: commit on return, rollback on throw. */
export async function inTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query("begin");
    const result = await fn(client);
    await client.query("commit");
    return result;
  } catch (error) {
    await client.query("rollback").catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}
