// fast-check properties over loadRepoConfig (src/settings/load-repo-config.ts): arbitrary text,
// random config-like objects serialized by `yaml` in every style (anchors and aliases for shared
// parts, cycles included), text mutations of those, deep nesting, huge numbers, alias fan-out.
// Used by bench/fuzz.mjs.
import fc from "fast-check";
import YAML from "yaml";
import { ENGINES } from "../../dist/engines/registry.js";
import { loadRepoConfig } from "../../dist/settings/load-repo-config.js";

const KEYS = ["version", "projects", "defaults", "policies", "name", "dir", "engine", "workspace", "autoplan", "enabled", "when_modified", "apply", "depends_on"]
  .concat(["approvals", "required", "teams", "users", "destroy_required", "env", "stacks", "drift", "schedule", "deny", "resource_types", "addresses", "max_changes", "require_approvals"]);
const NEAR_KEYS = ["__proto__", "constructor", "toString", "hasOwnProperty", "", "Version", "version ", " version", "<<", "projects\0", "d\u0456r", "?", "-", "&a", "*a", "!!str", "#x", "a: b", "1"];
const key = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...KEYS) }, fc.constantFrom(...NEAR_KEYS), fc.string({ maxLength: 12 }), fc.string({ unit: "binary", maxLength: 8 }));
const scalar = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(
    ...[1, 0, -1, 2, 1.5, -0, NaN, Infinity, -Infinity, 2 ** 53 + 2, 1e308, 5e-324, true, false, null, 10n ** 40n],
    ...["1", "yes", "no", "~", "null", ".inf", ".nan", "0x1F", "0o17", "1_000", "terraform", "tofu", "cdktf", "on_merge", "command", "both", "create", "destroy", "replace", "update"],
    ...["0 6 * * *", "*/0 * * * *", "* * * * * *", "99 99 99 99 99", "0 0 31 2 *", "L W # ? *", "*/999999999 * * * *", "0-59/0 * * * *", "H * * * *", "0 0 * * 8", "0 0 0 0 0"],
    ...["infra/a", "../x", "a/../..", "/abs", "C:x", "a\0b", "a\\..\\..\\b", "", " ", "default", "ENV_1", "1ENV", "x".repeat(201), "**/*.tf", "["],
  ) },
  fc.integer(), fc.bigInt({ min: -(2n ** 300n), max: 2n ** 300n }), fc.double(), fc.boolean(),
  fc.string({ maxLength: 20 }), fc.string({ unit: "binary", maxLength: 20 }),
);
const tree = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: "small", withCrossShrink: true }, tie("scalar"), tie("array"), tie("object")),
  scalar,
  array: fc.array(tie("node"), { maxLength: 5 }),
  object: fc.array(fc.tuple(key, tie("node")), { maxLength: 6 }).map((entries) => Object.fromEntries(entries)),
})).node;
/** Mostly the right type for a key, sometimes anything. */
const field = (good) => fc.oneof({ weight: 4, arbitrary: good }, scalar, tree);

const safe = fc.stringMatching(/^[A-Za-z0-9_-][A-Za-z0-9._-]{0,10}$/);
const cron = fc.constantFrom("0 6 * * *", "*/15 * * * *", "0 0 1 * *", "30 2 * * 1-5", "0 12 * * SUN");
const action = fc.constantFrom("create", "update", "replace", "destroy");
const approvals = fc.record({ required: fc.nat(5), teams: fc.array(safe, { maxLength: 2 }), users: fc.array(safe, { maxLength: 2 }), destroy_required: fc.nat(5) }, { requiredKeys: [] });
const policy = fc
  .tuple(fc.oneof(fc.record({ deny: fc.oneof(action, fc.uniqueArray(action, { minLength: 1 })) }), fc.record({ max_changes: fc.nat(1000) }), fc.record({ require_approvals: fc.integer({ min: 1, max: 5 }) })),
    fc.record({ resource_types: fc.array(fc.constantFrom("aws_*", "google_sql_*"), { minLength: 1, maxLength: 2 }), addresses: fc.array(fc.constantFrom("module.a.*", "x.y"), { minLength: 1, maxLength: 2 }) }, { requiredKeys: [] }))
  .map(([rule, scope]) => ({ ...rule, ...scope }));
const projectExtras = fc.record({
  engine: fc.constantFrom("terraform", "tofu", "cdktf"),
  workspace: fc.constantFrom("default", "prod", "a.b_c-1"),
  autoplan: fc.record({ enabled: fc.boolean(), when_modified: fc.array(fc.constantFrom("**/*.tf", "../modules/**"), { minLength: 1, maxLength: 2 }) }, { requiredKeys: [] }),
  apply: fc.constantFrom("on_merge", "command", "both"),
  approvals,
  env: fc.array(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,8}$/), { maxLength: 3 }),
  stacks: fc.array(safe, { minLength: 1, maxLength: 2 }),
  drift: fc.record({ schedule: cron }),
}, { requiredKeys: [] });
/** A config valid by construction: unique dirs under infra/, names n<i>, depends_on earlier names only. */
const validConfig = fc
  .tuple(fc.uniqueArray(safe, { maxLength: 5 }), fc.array(fc.tuple(fc.boolean(), projectExtras, fc.array(fc.nat(), { maxLength: 2 })), { minLength: 5, maxLength: 5 }), fc.array(policy, { maxLength: 3 }), fc.option(fc.record({ approvals, apply: fc.constantFrom("on_merge", "command", "both"), env: fc.array(fc.constantFrom("TF_LOG", "AWS_REGION"), { maxLength: 2 }), drift: fc.record({ schedule: cron }) }, { requiredKeys: [] }), { nil: undefined }))
  .map(([dirs, extras, policies, defaults]) => {
    const names = dirs.map((d, i) => (extras[i][0] ? `n${i}` : `infra/${d}`));
    const projects = dirs.map((d, i) => {
      const [named, extra, deps] = extras[i];
      const p = { ...(named ? { name: names[i] } : {}), dir: `infra/${d}`, ...extra };
      if (i > 0 && deps.length) p.depends_on = [...new Set(deps.map((k) => names[k % i]))];
      return p;
    });
    return { version: 1, ...(projects.length ? { projects } : {}), ...(policies.length ? { policies } : {}), ...(defaults ? { defaults } : {}) };
  });
/** The shape of a config with each value right or wrong. */
const configish = fc.record({
  version: field(fc.constant(1)),
  projects: field(fc.array(fc.record({ name: field(safe), dir: field(safe), engine: field(fc.constantFrom("terraform", "tofu")), workspace: field(safe), autoplan: field(fc.record({ enabled: fc.boolean() })), approvals: field(approvals), depends_on: field(fc.array(safe)), env: field(fc.array(safe)), drift: field(fc.record({ schedule: field(cron) })) }, { requiredKeys: [] }), { maxLength: 4 })),
  defaults: field(fc.record({ approvals: field(approvals), apply: field(fc.constant("both")), drift: field(fc.record({ schedule: field(cron) })) }, { requiredKeys: [] })),
  policies: field(fc.array(fc.oneof(policy, tree), { maxLength: 3 })),
}, { requiredKeys: [] });

/** Puts some containers of `value` inside others as well, so yaml writes anchors and aliases (cycles too). */
function share(value, links) {
  const containers = [];
  (function walk(v) {
    if (v === null || typeof v !== "object" || containers.includes(v)) return;
    containers.push(v);
    Object.values(v).forEach(walk);
  })(value);
  for (const [from, to, k] of links) {
    if (!containers.length) break;
    const target = containers[to % containers.length];
    const shared = containers[from % containers.length];
    if (Array.isArray(target)) target.push(shared);
    else Object.defineProperty(target, k, { value: shared, enumerable: true, writable: true, configurable: true });
  }
  return value;
}
const stringifyOptions = fc.record({
  indent: fc.integer({ min: 1, max: 8 }), indentSeq: fc.boolean(), collectionStyle: fc.constantFrom("any", "block", "flow"), flowCollectionPadding: fc.boolean(),
  defaultStringType: fc.constantFrom("PLAIN", "QUOTE_DOUBLE", "QUOTE_SINGLE", "BLOCK_LITERAL", "BLOCK_FOLDED"), defaultKeyType: fc.constantFrom(null, "PLAIN", "QUOTE_DOUBLE", "QUOTE_SINGLE"),
  lineWidth: fc.constantFrom(0, 20, 80), minContentWidth: fc.constantFrom(0, 20), doubleQuotedAsJSON: fc.boolean(), nullStr: fc.constantFrom("null", "~", ""), directives: fc.boolean(),
}, { requiredKeys: [] });
function serialize(value, options) {
  try {
    return YAML.stringify(value, options) ?? "";
  } catch {
    return JSON.stringify(value, (_, v) => (typeof v === "bigint" ? v.toString() : v)) ?? "";
  }
}
const shared = (arb) => fc.tuple(arb, fc.array(fc.tuple(fc.nat(), fc.nat(), key), { maxLength: 3 }), stringifyOptions).map(([v, links, options]) => serialize(share(v, links), options));

const SNIPPETS = ["&", "*", "!", "|", ">", "-", ":", "?", "{", "}", "[", "]", "#", "'", '"', "\t", "\n", "\r\n", "\r", "\0", "\uFEFF", "%YAML 1.1\n", "---", "...", "<<: *a\n", "!!binary ", "&a ", "*a", "*b ", " ", ": ", "- ", "\\", "\u2028", "\ud800", "%TAG ! tag:x,2000:\n"];
const mutations = fc.array(fc.tuple(fc.nat(), fc.nat(8), fc.oneof(fc.constantFrom(...SNIPPETS), fc.string({ unit: "binary", maxLength: 3 })), fc.constantFrom("insert", "delete", "replace")), { minLength: 1, maxLength: 4 });
function mutate(text, ops) {
  for (const [at, width, snippet, op] of ops) {
    const i = at % (text.length + 1);
    text = text.slice(0, i) + (op === "delete" ? "" : snippet) + text.slice(op === "insert" ? i : i + width);
  }
  return text;
}
const framing = fc.tuple(
  fc.constantFrom("", "", "", "\uFEFF", "%YAML 1.1\n---\n", "%YAML 1.2\n---\n", "---\n", "--- !!map\n", "%TAG ! tag:x,2000:\n---\n", "%YAML 9.9\n---\n", "# c\n"),
  fc.constantFrom("\n", "\n", "\r\n", "\r"),
  fc.constantFrom("", "", "\n...\n", "\n---\nversion: 1\n", "\0", "\n# end"),
);
const framed = (arb) => fc.tuple(arb, framing).map(([text, [head, eol, tail]]) => head + text.replace(/\n/g, eol) + tail);

/** Anchors and aliases written by hand: fan-out ladders, undefined and forward aliases, alias keys, merge keys. */
const aliases = fc.oneof(
  fc.tuple(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 12 })).map(([levels, fan]) =>
    ["version: 1", "x0: &a0 [x]", ...Array.from({ length: levels }, (_, l) => `x${l + 1}: &a${l + 1} [${Array(fan).fill(`*a${l}`).join(", ")}]`)].join("\n") + "\n"),
  fc.tuple(fc.constantFrom("a", "b", "x y", "\u00e9", "a".repeat(300)), fc.constantFrom("version", "projects", "dir", "env", "schedule"), fc.boolean()).map(([name, k, before]) =>
    `${before ? `base: &${name} 1\n` : ""}version: 1\nprojects:\n  - dir: infra\n    ${k}: *${name}\n${before ? "" : `later: &${name} 1\n`}`),
  fc.constantFrom("&a [*a]\n", "&a {x: *a}\n", "version: 1\nprojects: &p [*p]\n", "&k version: 1\n*k : 1\n", "version: 1\n<<: {projects: []}\n", "%YAML 1.1\n---\nbase: &b {version: 1}\n<<: *b\n", "version: 1\nprojects:\n  - &p {dir: a}\n  - *p\n", "? &k [a]\n: 1\n*k : 2\n", "version: *\n", "version: &\n", "*a\n"),
);
/**
 * 1 to 1,500 levels of flow or block nesting, at the top or under projects:. Nested collection
 * keys ("{{", "[{", "? ") stop at 80 levels: deeper, one case takes seconds to minutes (the
 * "nesting" probe below measures that), and 100,000 cases would never finish.
 */
const KEY_NESTING = ["{", "[{", "{[", "? "];
const deep = fc.tuple(fc.integer({ min: 1, max: 1500 }), fc.constantFrom("[", "{a: ", "- ", "&x [", "[[", "? ", "{", "[{", "{["), fc.boolean()).map(([n, open, under]) => {
  const depth = KEY_NESTING.includes(open) ? 1 + (n % 80) : n;
  const close = { "[": "]", "{a: ": "}", "&x [": "]", "[[": "]]", "{": "}", "[{": "}]", "{[": "]}" }[open] ?? "";
  const body = open === "- " || open === "? " ? Array.from({ length: Math.min(depth, 800) }, (_, i) => " ".repeat(i * 2) + open).join("\n") + "x\n" : open.repeat(depth) + "1" + close.repeat(depth);
  return under ? `version: 1\nprojects: ${open === "- " || open === "? " ? "\n" : ""}${body}\n` : body;
});
const hugeNumbers = fc.tuple(fc.constantFrom("version", "required", "max_changes", "require_approvals", "destroy_required"), fc.constantFrom(
  "1e400", "-1e400", "0x" + "f".repeat(100), "9".repeat(1000), "1" + "0".repeat(400), ".inf", "-.inf", ".NaN", "0b101", "1_0", "+1", "01", "1.0", "0o1", "1e0", "0x1",
  "!!int 1", "!!float 1", "!!str 1", "!!binary x", "!!timestamp 2001-12-14", "!!bool yes", "!!null", "!!set {a}", "!!omap [a: 1]", "!!pairs [a]", "!foo 1", "!<tag:yaml.org,2002:int> 1", "-0", "1e-400", "4294967296", "18446744073709551617",
)).map(([k, n]) => (k === "version" ? `version: ${n}\n` : k === "max_changes" || k === "require_approvals" ? `version: 1\npolicies:\n  - ${k}: ${n}\n` : `version: 1\nprojects:\n  - dir: a\n    approvals:\n      ${k}: ${n}\n`));

export const configText = fc.oneof(
  { weight: 2, arbitrary: fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: "binary", maxLength: 200 }), fc.string({ unit: "grapheme", maxLength: 80 })) },
  { weight: 3, arbitrary: framed(shared(configish)) },
  { weight: 3, arbitrary: fc.tuple(shared(configish), mutations).map(([t, ops]) => mutate(t, ops)) },
  { weight: 1, arbitrary: framed(shared(tree)) },
  { weight: 1, arbitrary: fc.tuple(validConfig, stringifyOptions, mutations).map(([v, o, ops]) => mutate(serialize(v, o), ops)) },
  { weight: 1, arbitrary: fc.tuple(aliases, fc.option(mutations, { nil: undefined })).map(([t, ops]) => (ops ? mutate(t, ops) : t)) },
  { weight: 1, arbitrary: deep },
  { weight: 1, arbitrary: hugeNumbers },
);

/** Why `r` is not a documented ConfigResult for `text`, or undefined when it is. */
function shapeViolation(r, text) {
  if (r === null || typeof r !== "object") return "not an object";
  if (r.ok === true) {
    const c = r.config;
    if (!c || c.fromFile !== true || !Array.isArray(c.projects) || !Array.isArray(c.policies)) return "ok without a config";
    if (c.projectsListed !== c.projects.length > 0) return "projectsListed wrong";
    if (c.projects.some((p) => typeof p?.name !== "string" || typeof p.dir !== "string")) return "a project without a name or dir";
    return undefined;
  }
  if (r.ok !== false || !Array.isArray(r.problems) || r.problems.length === 0) return "neither ok nor problems";
  const lineStarts = [0];
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) lineStarts.push(i + 1);
  for (const p of r.problems) {
    if (typeof p?.message !== "string" || p.message.length === 0) return "a problem without a message";
    if (!Number.isInteger(p.line) || p.line < 1 || !Number.isInteger(p.column) || p.column < 1) return "a problem's line or column not a positive integer";
    if (p.line > lineStarts.length || lineStarts[p.line - 1] + p.column - 1 > text.length) return "a problem's position past the end of the text";
  }
  return undefined;
}

/** False when yaml's stringify wrote text its own parser reads differently (a yaml bug, not plangate's). */
function yamlReadsBack(text, value) {
  try {
    return JSON.stringify(YAML.parse(text)) === JSON.stringify(value);
  } catch {
    return false;
  }
}

/** Load time as nesting grows, up to the first depth that takes over a second; each style's worst case is a failure. */
function nestingProbe() {
  const styles = { "[": "]", "{a: ": "}", "{": "}", "[{": "}]", "{[": "]}" };
  const failures = [];
  const timings = {};
  let cases = 0;
  for (const [open, close] of Object.entries(styles)) {
    for (let depth = 25; depth <= 400; depth += 25) {
      const text = open.repeat(depth) + "1" + close.repeat(depth);
      const started = performance.now();
      loadRepoConfig(text, ENGINES.names);
      const ms = Math.round(performance.now() - started);
      cases++;
      (timings[JSON.stringify(open)] ??= []).push(`${depth}:${ms}ms`);
      if (ms > 1000) {
        const minimal = `${JSON.stringify(open)}.repeat(${depth}) + "1" + ${JSON.stringify(close)}.repeat(${depth})`;
        failures.push({ kind: `takes over 1 s: ${text.length} chars nested ${depth} deep took ${ms} ms`, count: 1, minimal, shrinks: 0 });
        break;
      }
    }
  }
  return { cases, outcomes: timings, failures };
}

export const properties = [
  { name: "loadRepoConfig: nesting probe (time vs depth)", probe: nestingProbe },
  {
    name: "loadRepoConfig: returns a documented shape",
    arbitrary: configText,
    text: (text) => text,
    run(text) {
      const r = loadRepoConfig(text, ENGINES.names);
      return { outcome: r?.ok === true ? "ok" : "problems", violation: shapeViolation(r, text) };
    },
  },
  {
    name: "loadRepoConfig: valid configs load, however yaml writes them",
    arbitrary: fc.tuple(validConfig, stringifyOptions.map((o) => ({ ...o, directives: false }))).map(([v, o]) => [serialize(v, o), v]),
    text: ([text]) => text,
    run([text, v]) {
      if (!yamlReadsBack(text, v)) return { outcome: "yaml's own writer broke it" };
      const r = loadRepoConfig(text, ENGINES.names);
      const violation = shapeViolation(r, text) ?? (!r.ok ? `refused: ${r.problems[0].message.replace(/"[^"]*"/g, '"…"')}` : r.config.projects.length !== (v.projects?.length ?? 0) ? "lost projects" : undefined);
      return { outcome: r?.ok === true ? "ok" : "problems", violation };
    },
  },
];
