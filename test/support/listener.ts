import net from "node:net";

/**
 * A TCP listener a test owns, recording who connects. That nothing (more)
 * arrived is proved by an event, not a pause: `settled()` connects once
 * itself and, when the listener accepts that connection, answers with what
 * came before it. A listener accepts connections in the order they were made,
 * so whatever a finished program connected is in the answer.
 */
export class RecordingListener {
  private readonly arrivals: { address: string; port: number }[] = [];
  private readonly waiting: (() => void)[] = [];
  /** The listener's own connections, as `address port`. */
  private readonly probes = new Set<string>();

  private constructor(
    private readonly server: net.Server,
    private readonly host: string,
  ) {}

  /** Listens on `host` (`::`: every address of this machine); each connection is sent `answer`, when given, and closed. */
  static async start(host: string, answer?: string): Promise<RecordingListener> {
    let listener: RecordingListener | undefined;
    const server = net.createServer((socket) => {
      socket.on("error", () => undefined);
      listener!.arrived(socket);
      if (answer !== undefined) socket.end(answer);
    });
    listener = new RecordingListener(server, host);
    await new Promise<void>((resolve) => server.listen(0, host, resolve));
    return listener;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Who connected before now: the connections made before this call, each accepted by the time it answers. */
  async settled(): Promise<string[]> {
    const probe = net.connect(this.port, this.host === "::" ? "127.0.0.1" : this.host);
    probe.on("error", () => undefined);
    await new Promise<void>((resolve) => probe.once("connect", resolve));
    const self = key({ address: probe.localAddress!, port: probe.localPort! });
    this.probes.add(self);
    const accepted = () => this.arrivals.findIndex((a) => key(a) === self);
    while (accepted() < 0) await new Promise<void>((resolve) => this.waiting.push(resolve));
    probe.destroy();
    return this.others(this.arrivals.slice(0, accepted()));
  }

  close(): void {
    this.server.close();
  }

  private others(arrivals: { address: string; port: number }[]): string[] {
    return arrivals.filter((a) => !this.probes.has(key(a))).map((a) => a.address);
  }

  private arrived(socket: net.Socket): void {
    this.arrivals.push({ address: socket.remoteAddress ?? "?", port: socket.remotePort ?? 0 });
    for (const wake of this.waiting.splice(0)) wake();
  }
}

/** One end of a connection, an IPv4 address the same whether it came as itself or mapped into IPv6. */
const key = (end: { address: string; port: number }) => `${end.address.replace(/^::ffff:/, "")} ${end.port}`;
