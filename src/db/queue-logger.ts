import { Logger } from "graphile-worker";

/** graphile-worker's logs below warning are noise for plangate's operators. */
export const quietLogger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") console.error(`[queue] ${message}`);
});
