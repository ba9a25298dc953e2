const on = !!process.env.PLANGATE_TRACE;
let cpu0 = process.cpuUsage();
export function T(label: string): void {
  if (!on) return;
  const c = process.cpuUsage(cpu0);
  process.stderr.write(`TRACE ${Date.now()} ${label} cpu=${Math.round((c.user + c.system) / 1000)}\n`);
}
