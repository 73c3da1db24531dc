// --pre-start "<command>": steps that must run once before any worker starts (database migrations).
// Runs under `sh -c` with the workers' environment; a failure stops everything and becomes the exit
// status. TERM/INT meanwhile are passed on to it (as PID 1 we would otherwise ignore them).

import { trackChild, untrackChild } from "./children.ts";
import type { Logger } from "./log.ts";

/** Runs the command; resolves with its exit status (128 + signal number when killed). */
export async function runPreStart(
  command: string,
  env: Record<string, string | undefined>,
  logger: Logger,
): Promise<number> {
  const started = performance.now();
  logger.info(`pre-start: ${command}`);
  const proc = Bun.spawn(["/bin/sh", "-c", command], { env, stdio: ["ignore", "inherit", "inherit"] });
  trackChild(proc.pid);
  const forward = (signal: NodeJS.Signals) => () => proc.kill(signal);
  const handlers = (["SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP"] as const).map((s) => [s, forward(s)] as const);
  for (const [signal, handler] of handlers) process.on(signal, handler);
  const code = await proc.exited;
  for (const [signal, handler] of handlers) process.off(signal, handler);
  untrackChild(proc.pid);
  const ms = Math.round(performance.now() - started);
  if (code === 0) logger.info(`pre-start finished in ${ms} ms`);
  else
    logger.error(
      `pre-start failed: ${proc.signalCode ? `signal ${proc.signalCode}` : `exit code ${code}`} after ${ms} ms; starting nothing`,
    );
  return code;
}
