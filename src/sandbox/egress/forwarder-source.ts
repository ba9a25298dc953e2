/**
 * The forwarder that runs INSIDE a sandbox's network namespace (`node -e
 * FORWARDER_SOURCE CONFIG [-- COMMAND...]`), where only loopback exists. It
 * listens on each allowed host:port (a TCP client there is tunnelled with a
 * CONNECT through the Unix socket to the host's filter) and on 127.0.2.1:<any>
 * as the HTTP proxy (bytes piped to the filter unchanged). Without a command
 * it prints `{"proxy":URL,"failed":[...]}` and serves until killed; with one,
 * it runs the command with the proxy variables set and exits as it exits.
 * Plain JavaScript, as node runs it; it holds no secrets and decides nothing:
 * every destination is checked on the host.
 */
export const FORWARDER_SOURCE = String.raw`"use strict";
const net = require("net");
const { spawn } = require("child_process");
const config = JSON.parse(process.argv[1]);
const command = process.argv.slice(3);
const IDLE_MS = 300000;

function splice(a, b) {
  const close = () => { a.destroy(); b.destroy(); };
  for (const s of [a, b]) { s.on("error", close); s.on("close", close); s.setTimeout(IDLE_MS, close); }
  a.pipe(b); b.pipe(a);
}

function relay(client, target) {
  const filter = net.connect(config.socket);
  if (!target) return splice(client, filter);
  client.pause();
  client.on("error", () => filter.destroy());
  filter.on("error", () => client.destroy());
  filter.write("CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n");
  let head = Buffer.alloc(0);
  const onData = (chunk) => {
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf("\r\n\r\n");
    if (end < 0) { if (head.length > 16384) { filter.destroy(); client.destroy(); } return; }
    filter.removeListener("data", onData);
    filter.pause();
    if (!/^HTTP\/1\.[01] 200 /.test(head.toString("latin1", 0, end))) { filter.destroy(); client.destroy(); return; }
    if (end + 4 < head.length) client.write(head.subarray(end + 4));
    splice(client, filter);
  };
  filter.on("data", onData);
}

function listen(host, port, target, failed) {
  return new Promise((resolve) => {
    const server = net.createServer((client) => relay(client, target));
    server.on("error", (error) => { failed.push(host + ":" + port + " (" + error.code + ")"); resolve(undefined); });
    server.listen({ host, port, exclusive: true }, () => resolve(server));
  });
}

(async () => {
  const failed = [];
  for (const f of config.forward) await listen(f.host, f.port, f.target, failed);
  const proxy = await listen(config.proxyHost, 0, null, failed);
  if (!proxy) { process.stderr.write("plangate egress forwarder: cannot listen: " + failed.join(", ") + "\n"); process.exit(70); }
  const url = "http://" + config.proxyHost + ":" + proxy.address().port;
  if (!command.length) { process.stdout.write(JSON.stringify({ proxy: url, failed }) + "\n"); return; }
  if (failed.length) process.stderr.write("plangate egress forwarder: cannot listen on " + failed.join(", ") + "\n");
  const env = Object.assign({}, process.env, { HTTPS_PROXY: url, HTTP_PROXY: url, https_proxy: url, http_proxy: url });
  const child = spawn(command[0], command.slice(1), { stdio: "inherit", env });
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"]) process.on(signal, () => child.kill(signal));
  child.on("error", (error) => { process.stderr.write("cannot start " + command[0] + ": " + error.message + "\n"); process.exit(127); });
  child.on("exit", (code, signal) => process.exit(signal ? 128 + (require("os").constants.signals[signal] || 0) : code));
})();
`;
