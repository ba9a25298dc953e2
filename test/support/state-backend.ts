import http from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A terraform http backend a test owns, without locking (no lock_address):
 * terraform itself does not serialize two applies against it. Each state
 * is kept by its path, so a test can read back what an apply wrote.
 */
export interface StateBackend {
  states: Map<string, string>;
  port: number;
  /** The backend address of the state named `name`. */
  url(name: string): string;
  close(): void;
}

export async function startStateBackend(): Promise<StateBackend> {
  const states = new Map<string, string>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method === "POST") {
        states.set(req.url!, Buffer.concat(chunks).toString("utf8"));
        res.writeHead(200).end();
      } else if (states.has(req.url!)) res.writeHead(200, { "content-type": "application/json" }).end(states.get(req.url!));
      else res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return { states, port, url: (name) => `http://127.0.0.1:${port}/${name}`, close: () => server.close() };
}
