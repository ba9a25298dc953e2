import type { Server } from "node:http";

/**
 * How long the server keeps an idle connection open: longer than the idle
 * timeout of the load balancers plangate usually sits behind (an AWS ALB's
 * is 60 s, nginx's upstream keep-alive 60 s), so that the balancer, not
 * plangate, closes an idle connection. Node's own 5 s would close
 * connections the balancer still thinks open, and the delivery it sends on
 * one at that moment meets a reset (GitHub does not retry it).
 */
export const KEEP_ALIVE_MS = 65_000;

/** Applies KEEP_ALIVE_MS; the headers timeout must be longer still (Node's rule). */
export function keepConnectionsAlive(server: Server): void {
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  server.headersTimeout = KEEP_ALIVE_MS + 1000;
}
