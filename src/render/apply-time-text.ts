import type { ApplyTimeCode } from "../plans/apply-time.js";
import { formatValue } from "./format-value.js";

/** Instances named per resource block; the rest are counted. */
export const MAX_INSTANCES_LISTED = 10;

const instanceLine = (code: ApplyTimeCode) => {
  const { instances } = code;
  if (instances.length === 1 && instances[0]!.address === code.resource) return `# ${code.resource} (${instances[0]!.action})`;
  const listed = instances.slice(0, MAX_INSTANCES_LISTED).map((i) => `${i.address} (${i.action})`);
  const rest = instances.length - listed.length;
  return `# ${code.resource}: ${listed.join(", ")}${rest > 0 ? `, and ${rest} more` : ""}`;
};

/**
 * The provisioners of a plan as HCL-like lines, for a code block: each
 * resource block with the instances it runs for, then every provisioner's
 * arguments, constants as values and other expressions by what they refer to.
 */
export function applyTimeText(codes: ApplyTimeCode[]): string {
  const lines: string[] = [];
  for (const code of codes) {
    if (lines.length) lines.push("");
    lines.push(instanceLine(code));
    for (const provisioner of code.provisioners) {
      lines.push(`provisioner ${JSON.stringify(provisioner.type)} {`);
      const width = Math.max(0, ...provisioner.arguments.map((a) => a.name.length));
      for (const arg of provisioner.arguments) {
        const name = `  ${arg.name.padEnd(width)} = `;
        if (arg.references) {
          lines.push(`${name}(an expression${arg.references.length ? ` of ${arg.references.join(", ")}` : ""}, evaluated at apply)`);
          continue;
        }
        const [first, ...rest] = formatValue(arg.value, "  ");
        lines.push(`${name}${first}`, ...rest);
      }
      lines.push("}");
    }
  }
  return lines.join("\n");
}

/** How many provisioners run at apply, over all resource blocks. */
export const provisionerCount = (codes: ApplyTimeCode[]) => codes.reduce((n, c) => n + c.provisioners.length, 0);
