import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { parse, parseAllDocuments } from "yaml";
import { SUBCOMMANDS } from "../../src/cli/subcommands.js";
import type { Pool } from "../../src/db/pool.js";
import { readSettings, SETTING_NAMES, type Settings } from "../../src/settings/settings.js";
import { HEALTH_PATHS } from "../../src/web/health.js";
import { JOBS_METRIC, Metrics } from "../../src/web/metrics.js";

/**
 * deploy/kubernetes cannot drift from the code: every manifest is parsed with
 * the project's YAML library and checked against what plangate reads (setting
 * names and values, through readSettings itself), serves (ports, probe paths,
 * the metric an autoscaler follows) and accepts (CLI subcommands), and the
 * worker's security context against the copy docs/deploy.md documents.
 */

const DIR = "deploy/kubernetes";
const KUSTOMIZATION = "kustomization.yaml";
/** Probot reads these itself (DESIGN.md section 2), whether or not plangate does. */
const PROBOT_SETTINGS = ["APP_ID", "PRIVATE_KEY", "PRIVATE_KEY_PATH", "WEBHOOK_SECRET", "WEBHOOK_PROXY_URL", "GHE_HOST", "GHE_PROTOCOL", "PORT", "LOG_LEVEL"];
/** Addresses a listener must bind for the kubelet's probes and Prometheus to reach it. */
const ANY_ADDRESS = ["0.0.0.0", "::"];
/** Valid values for the settings the manifests take from a Secret, so readSettings can judge the rest. */
const SECRET_STAND_INS: Record<string, string> = {
  WEBHOOK_SECRET: "stand-in webhook secret",
  DATABASE_URL: "postgres://plangate:stand-in@postgres:5432/plangate",
  PLANGATE_ENCRYPTION_KEY: "ab".repeat(32),
};
const PEM_STAND_IN = "-----BEGIN PRIVATE KEY-----\nstand-in\n-----END PRIVATE KEY-----\n";

interface Probe { httpGet?: { path: string; port: string | number } }
interface EnvVar { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean }; configMapKeyRef?: { name: string; key: string } } }
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string; optional?: boolean } }[];
  ports?: { name?: string; containerPort: number }[];
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  securityContext?: unknown;
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec {
  hostUsers?: boolean;
  containers: Container[];
  initContainers?: Container[];
  volumes?: { name: string; secret?: { secretName: string; items?: { key: string; path: string }[] } }[];
}
type Labels = Record<string, string>;
interface Manifest {
  file: string;
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  // Each kind's own spec; read through the helpers below.
  spec?: Record<string, unknown>;
}
interface Workload { name: string; labels: Labels; annotations: Labels; pod: PodSpec }

const files = readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f)).sort();
const manifests: Manifest[] = files.flatMap((file) =>
  parseAllDocuments(readFileSync(path.join(DIR, file), "utf8")).map((doc) => {
    if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0]!.message}`);
    return { file, ...(doc.toJS() as Omit<Manifest, "file">) };
  }),
);
const resources = manifests.filter((m) => m.file !== KUSTOMIZATION);
const kustomization = manifests.find((m) => m.file === KUSTOMIZATION) as unknown as { resources: string[]; images: { name: string; newTag: string }[] };
const ofKind = (kind: string) => resources.filter((m) => m.kind === kind);
const workloads: Workload[] = ofKind("Deployment").map((d) => {
  const template = (d.spec as { template: { metadata: { labels: Labels; annotations?: Labels }; spec: PodSpec } }).template;
  return { name: d.metadata.name, labels: template.metadata.labels, annotations: template.metadata.annotations ?? {}, pod: template.spec };
});
const allContainers = (w: Workload) => [...(w.pod.initContainers ?? []), ...w.pod.containers];
const selects = (selector: Labels, labels: Labels) => Object.entries(selector).every(([k, v]) => labels[k] === v);
const workloadNamed = (name: string) => workloads.find((w) => w.name === name) ?? fail(`no Deployment ${name}`);
function fail(message: string): never {
  throw new Error(message);
}

/** The variables a container's process sees: literal values, ConfigMaps' keys, and which names come from Secrets. */
function environment(container: Container): { literal: Record<string, string>; fromSecret: EnvVar[] } {
  const literal: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    if (!source.configMapRef) continue;
    const map = ofKind("ConfigMap").find((m) => m.metadata.name === source.configMapRef!.name) ?? fail(`${container.name}: ConfigMap ${source.configMapRef.name} is not in ${DIR}`);
    Object.assign(literal, map.data);
  }
  const fromSecret: EnvVar[] = [];
  for (const variable of container.env ?? []) {
    if (variable.value !== undefined) literal[variable.name] = variable.value;
    else if (variable.valueFrom?.secretKeyRef) fromSecret.push(variable);
    else fail(`${container.name}: ${variable.name} has neither a value nor a Secret key`);
  }
  return { literal, fromSecret };
}

/** readSettings on what the container is given, with stand-ins for its Secret values and its mounted private key. */
function settingsOf(container: Container): Settings {
  const { literal, fromSecret } = environment(container);
  const env: Record<string, string> = { ...literal };
  for (const variable of fromSecret) {
    if (variable.valueFrom!.secretKeyRef!.optional) continue;
    env[variable.name] = SECRET_STAND_INS[variable.name] ?? fail(`add a stand-in value for the Secret's ${variable.name} to this test`);
  }
  if (env.PRIVATE_KEY_PATH) {
    delete env.PRIVATE_KEY_PATH;
    env.PRIVATE_KEY = PEM_STAND_IN;
  }
  return readSettings(env, "/app");
}

/** The HTTP port plangate listens on in this container: the webhook server's, else the probes and metrics port. */
function servedPort(container: Container): number | undefined {
  const settings = settingsOf(container);
  return container.command?.[2] === "start" ? settings.port : settings.metricsPort;
}

function containerPort(container: Container, port: string | number): number {
  if (typeof port === "number") return port;
  return container.ports?.find((p) => p.name === port)?.containerPort ?? fail(`${container.name}: no port named ${port}`);
}

const server = workloadNamed("plangate-server");
const worker = workloadNamed("plangate-worker");
const serverContainer = server.pod.containers.find((c) => c.name === "server")!;
const workerContainer = worker.pod.containers.find((c) => c.name === "worker")!;

describe("deploy/kubernetes", () => {
  test("the kustomization lists every other file, and deploys this version's image", () => {
    expect([...kustomization.resources].sort()).toEqual(files.filter((f) => f !== KUSTOMIZATION));
    const version = (JSON.parse(readFileSync("package.json", "utf8")) as { version: string }).version;
    expect(kustomization.images).toEqual([expect.objectContaining({ name: "plangate", newTag: version })]);
    for (const w of workloads) for (const c of allContainers(w)) expect(c.image).toBe("plangate");
  });

  test("every Deployment selects its own pods, and every selector selects a Deployment's pods", () => {
    for (const d of ofKind("Deployment")) {
      const { selector } = d.spec as { selector: { matchLabels: Labels } };
      expect(selects(selector.matchLabels, workloadNamed(d.metadata.name).labels)).toBe(true);
    }
    const selectors = [
      ...ofKind("Service").map((s) => (s.spec as { selector: Labels }).selector),
      ...ofKind("PodDisruptionBudget").map((p) => (p.spec as { selector: { matchLabels: Labels } }).selector.matchLabels),
      ...ofKind("NetworkPolicy").map((n) => (n.spec as { podSelector: { matchLabels: Labels } }).podSelector.matchLabels),
    ];
    for (const selector of selectors) expect(workloads.filter((w) => selects(selector, w.labels)).map((w) => w.name)).toHaveLength(1);
  });

  test("every env name is a setting plangate or Probot reads, and no setting hides in an envFrom Secret", () => {
    const known = new Set<string>([...SETTING_NAMES, ...PROBOT_SETTINGS]);
    for (const w of workloads) {
      for (const c of allContainers(w)) {
        const { literal, fromSecret } = environment(c);
        const names = [...Object.keys(literal), ...fromSecret.map((v) => v.name)];
        expect(names.filter((n) => !known.has(n))).toEqual([]);
        // A Secret read whole (envFrom) is for projects' variables only: a setting there would escape this test.
        const settingsSecrets = new Set(fromSecret.map((v) => v.valueFrom!.secretKeyRef!.name));
        for (const source of c.envFrom ?? []) if (source.secretRef) expect(settingsSecrets.has(source.secretRef.name)).toBe(false);
      }
    }
  });

  test("every value passes plangate's own validation, and the private key path is a mounted Secret key", () => {
    for (const w of workloads) {
      for (const c of allContainers(w)) {
        expect(() => settingsOf(c)).not.toThrow();
        const keyPath = environment(c).literal.PRIVATE_KEY_PATH;
        if (!keyPath) continue;
        const mounted = (c.volumeMounts ?? []).flatMap((m) => {
          const volume = w.pod.volumes?.find((v) => v.name === m.name);
          return (volume?.secret?.items ?? []).map((item) => path.posix.join(m.mountPath, item.path));
        });
        expect(mounted).toContain(keyPath);
      }
    }
  });

  test("containers run subcommands the CLI accepts: the server without workers, the worker sandboxed with a probes port", () => {
    for (const w of workloads) {
      for (const c of allContainers(w)) {
        const [node, bin, subcommand] = c.command ?? [];
        expect([node, bin]).toEqual(["node", "bin/plangate.js"]);
        expect(existsSync(bin!)).toBe(true);
        expect(SUBCOMMANDS).toContain(subcommand);
      }
    }
    expect(serverContainer.command).toEqual(["node", "bin/plangate.js", "start"]);
    expect(settingsOf(serverContainer).workers).toBe(0);
    expect(workerContainer.command).toEqual(["node", "bin/plangate.js", "worker"]);
    expect(settingsOf(workerContainer)).toMatchObject({ sandbox: "bwrap", metricsPort: expect.any(Number) });
    expect(settingsOf(workerContainer).workers).toBeGreaterThan(0);
  });

  test("ports, probes and scrape annotations name what plangate serves, where it serves it", () => {
    for (const w of workloads) {
      for (const c of w.pod.containers) {
        const served = servedPort(c) ?? fail(`${c.name} serves no HTTP: set PLANGATE_METRICS_PORT`);
        expect(ANY_ADDRESS).toContain(settingsOf(c).host);
        expect((c.ports ?? []).map((p) => p.containerPort)).toEqual([served]);
        const probes = { startupProbe: HEALTH_PATHS.live, livenessProbe: HEALTH_PATHS.live, readinessProbe: HEALTH_PATHS.ready } as const;
        for (const [kind, servedPath] of Object.entries(probes)) {
          const probe = c[kind as keyof typeof probes]?.httpGet ?? fail(`${c.name} has no ${kind}`);
          expect({ kind, path: probe.path, port: containerPort(c, probe.port) }).toEqual({ kind, path: servedPath, port: served });
        }
        expect(w.annotations).toMatchObject({ "prometheus.io/path": HEALTH_PATHS.metrics, "prometheus.io/port": String(served) });
      }
    }
    const [service] = ofKind("Service");
    for (const port of (service!.spec as { ports: { targetPort: string | number }[] }).ports) expect(containerPort(serverContainer, port.targetPort)).toBe(settingsOf(serverContainer).port);
    for (const policy of ofKind("NetworkPolicy")) {
      for (const rule of (policy.spec as { ingress?: { ports?: { port: string | number }[] }[] }).ingress ?? []) {
        for (const port of rule.ports ?? []) expect(containerPort(workerContainer, port.port)).toBe(settingsOf(workerContainer).metricsPort);
      }
    }
  });

  test("the worker's security context is the one docs/deploy.md documents", () => {
    const page = readFileSync("docs/deploy.md", "utf8");
    const section = page.split(/^## /m).find((s) => s.startsWith("Deploying on Kubernetes\n")) ?? fail("docs/deploy.md has no Deploying on Kubernetes section");
    const blocks = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => parse(m[1]!) as { hostUsers?: boolean; containers?: Container[] });
    const documented = blocks.find((b) => b.containers?.some((c) => c.name === "worker")) ?? fail("docs/deploy.md's Kubernetes section has no worker security context block");
    expect(documented.hostUsers).toBe(worker.pod.hostUsers);
    expect(documented.containers!.find((c) => c.name === "worker")!.securityContext).toEqual(workerContainer.securityContext);
    expect(workerContainer.securityContext).toBeDefined();
  });

  test("the ScaledObject scales the workers on the queue gauge plangate registers, one pod per PLANGATE_WORKERS jobs", () => {
    const [scaled] = ofKind("ScaledObject");
    const spec = scaled!.spec as { scaleTargetRef: { name: string }; triggers: { type: string; metadata: { query: string; threshold: string } }[] };
    expect(spec.scaleTargetRef.name).toBe(worker.name);
    const [trigger] = spec.triggers;
    expect(trigger!.type).toBe("prometheus");
    const { query, threshold } = trigger!.metadata;
    expect(new Metrics({} as Pool).registry.getSingleMetric(JOBS_METRIC.name)).toBeDefined();
    expect(new Set(query.match(/\bplangate_\w+/g))).toEqual(new Set([JOBS_METRIC.name]));
    // Summed over all of the gauge's own labels: one series per scraped process, whose max is the queue.
    const without = /sum without \(([^)]*)\)/.exec(query)?.[1]?.split(",").map((l) => l.trim()) ?? fail(`the query does not sum without the gauge's labels: ${query}`);
    expect(new Set(without)).toEqual(new Set(JOBS_METRIC.labelNames));
    expect(query).toMatch(/^max\(/);
    expect(Number(threshold)).toBe(settingsOf(workerContainer).workers);
  });
});
