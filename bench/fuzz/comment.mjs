// fast-check properties over parseComment (src/commands/parse-command.ts): what a PR comment
// may hold, from arbitrary text to near misses of "/plan -p NAME" (odd flags and values, unicode,
// long lines, CRLF, NUL). Used by bench/fuzz.mjs.
import fc from "fast-check";
import { COMMANDS, parseComment } from "../../dist/commands/parse-command.js";

const anyText = fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: "binary", maxLength: 300 }), fc.string({ unit: "grapheme", maxLength: 80 }));
const mostly = (usual, odd) => fc.oneof({ weight: 8, arbitrary: usual }, { weight: 2, arbitrary: odd });
const gap = mostly(fc.constant(" "), fc.constantFrom("  ", "\t", "\u00a0", "\u2003", "\u3000", "\u200b", "\u2028", "\u0085", "\f", "\v", "\0", ""));
const commandWord = mostly(
  fc.constantFrom("/plan", "/plan", "/apply", "/apply", "/unlock", "/help"),
  fc.constantFrom("/PLAN", "/Plan", "/planet", "/plan\0", "//plan", "\\plan", "\uff0fplan", "/plan-", "/plan/", "/plan=", "/", "plan", "/app ly", "/pl\u0430n", "/help!", "/unlock\u0301"),
);
const flag = mostly(
  fc.constantFrom("-p", "-d", "-w", "--all", "--project", "--dir", "--workspace"),
  fc.constantFrom("--project=", "--dir=", "--workspace=", "--all=", "--all=yes", "-", "--", "---p", "-P", "-pd", "-p=", "\u2014p", "\u2212p", "--proto", "--__proto__", "__proto__", "constructor", "--toString", "--hasOwnProperty", "--constructor"),
);
const value = fc.oneof(
  { weight: 3, arbitrary: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,12}(\/[A-Za-z0-9._-]{1,12}){0,2}\/?$/) },
  fc.constantFrom(
    ...["network", "infra/network", "infra/network/", "a", ".", "..", "../x", "a/../../b", "a/..", "/etc", "//", "///", "a//", "C:\\x", "C:x", "a\\..\\b"],
    ...["default", "prod-1.2_x", "$(id)", "`id`", "'a;rm'", "a\0b", "\u00e9", "\u{1F600}", "a=b", "=", "x".repeat(200), "x".repeat(201), "w".repeat(90), "w".repeat(91), "-x", "--all"],
  ),
  fc.stringMatching(/^[A-Za-z0-9._/-]{1,24}$/),
  fc.string({ maxLength: 30 }),
  fc.string({ unit: "binary", maxLength: 20 }),
);
const token = fc.oneof(
  { weight: 3, arbitrary: flag },
  { weight: 3, arbitrary: value },
  { weight: 2, arbitrary: fc.tuple(flag, value).map(([f, v]) => `${f}=${v}`) },
);
const lead = mostly(fc.constant(""), fc.constantFrom("\uFEFF", " ", "\t", "\uFEFF\uFEFF", "\n", "\r\n", "> ", "`", "\u00a0", "\0"));
const lineEnd = fc.constantFrom("", "\n", "\r\n", "\r", "\n\r", "\u2028", "\0", "\r\r\n");
/** A line that starts like a command: the parser's whole state space. */
const commandLine = fc
  .tuple(lead, commandWord, fc.array(fc.tuple(gap, token), { maxLength: 6 }), gap, lineEnd, anyText)
  .map(([l, cmd, parts, trail, eol, rest]) => l + cmd + parts.map(([g, t]) => g + t).join("") + trail + eol + rest);
/** Lines of 1,000 to 50,000 repeats: regular-expression blow-ups show up as slow cases. */
const longLine = fc
  .tuple(fc.constantFrom("", "/plan", "/plan ", "/plan -p ", "/apply -d ", "/plan --project=", "/plan -w "), fc.constantFrom("a", " ", "-p a ", "/", "\t", "\u00e9", "-", "\r", "a/", "--all "), fc.integer({ min: 1000, max: 50_000 }), lineEnd)
  .map(([head, unit, n, eol]) => head + unit.repeat(n) + eol);

export const commentBody = fc.oneof({ weight: 2, arbitrary: anyText }, { weight: 7, arbitrary: commandLine }, { weight: 1, arbitrary: longLine });

const PLAIN = /^[A-Za-z0-9._/-]{1,200}$/;
const WORKSPACE = /^[A-Za-z0-9._-]{1,90}$/;

/** Why `r` is not one of the shapes ParsedComment documents, or undefined when it is. */
function shapeViolation(r) {
  if (r === null || typeof r !== "object") return "not an object";
  if (r.kind === "none") return Object.keys(r).length === 1 ? undefined : "none with other keys";
  if (!COMMANDS.includes(r.command)) return `${r.kind} without a known command`;
  if (r.kind === "invalid") return typeof r.message === "string" && r.message.length > 0 && Object.keys(r).length === 3 ? undefined : "invalid without a message";
  if (r.kind !== "command") return "unknown kind";
  const s = r.selector;
  if (!s || typeof s.all !== "boolean") return "command without selector.all";
  if (Object.keys(s).some((k) => !["all", "project", "dir", "workspace"].includes(k))) return "selector with unknown keys";
  if (s.project !== undefined && !PLAIN.test(s.project)) return "project not plain";
  if (s.dir !== undefined && (!PLAIN.test(s.dir) || s.dir.startsWith("/") || s.dir.split("/").includes(".."))) return "dir not plain and relative";
  if (s.workspace !== undefined && !WORKSPACE.test(s.workspace)) return "workspace not plain";
  if (s.all && (r.command !== "plan" || s.project !== undefined || s.dir !== undefined)) return "--all outside /plan or with -p/-d";
  if ((r.command === "unlock" || r.command === "help") && Object.keys(s).length !== 1) return `/${r.command} with a selector`;
  return undefined;
}

export const properties = [
  {
    name: "parseComment: returns a documented shape",
    arbitrary: commentBody,
    text: (body) => body,
    run(body) {
      const r = parseComment(body);
      return { outcome: r?.kind, violation: shapeViolation(r) };
    },
  },
  {
    name: "parseComment: only the first line counts",
    arbitrary: fc.tuple(commentBody.map((b) => b.split(/\r?\n/, 1)[0]), fc.constantFrom("\n", "\r\n"), commentBody),
    text: ([first, eol, rest]) => first + eol + rest,
    run([first, eol, rest]) {
      const whole = parseComment(first + eol + rest);
      const alone = parseComment(first);
      return { outcome: whole?.kind, violation: JSON.stringify(whole) === JSON.stringify(alone) ? undefined : "differs from its first line alone" };
    },
  },
];
