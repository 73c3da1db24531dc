// --pre-start "<command>": steps that must run once before any worker starts (database migrations).
// Runs under `sh -c` with the workers' environment; a failure stops everything and becomes the exit
// status. A stop signal meanwhile (TERM, INT, QUIT) is passed on to it and the start-up ends there
// (exit 0, src/runtime/start.ts); HUP and USR1/USR2 are not (src/runtime/signals.ts: logged and ignored).

import { trackChild, untrackChild } from "../os/children.ts";
import type { Logger } from "./log.ts";
import type { StartupSignals } from "./signals.ts";

/** Runs the command; resolves with its exit status (128 + signal number when killed). */
export async function runPreStart(
  command: string,
  env: Record<string, string | undefined>,
  logger: Logger,
  signals: Pick<StartupSignals, "onStop">,
): Promise<number> {
  const started = performance.now();
  logger.info(`pre-start: ${command}`);
  // Its own process group, so a stop reaches what `sh` started too (`sh -c 'a && b'` does not exec).
  const proc = Bun.spawn(["/bin/sh", "-c", command], {
    env,
    stdio: ["ignore", "inherit", "inherit"],
    detached: true,
  });
  trackChild(proc.pid);
  let stoppedBy: string | undefined;
  const off = signals.onStop((signal) => {
    stoppedBy = signal;
    try {
      process.kill(-proc.pid, signal);
    } catch {
      proc.kill(signal); // the group is gone already; the shell may still be exiting
    }
  });
  const code = await proc.exited;
  off();
  untrackChild(proc.pid);
  const ms = Math.round(performance.now() - started);
  if (stoppedBy) logger.info(`pre-start stopped by ${stoppedBy} after ${ms} ms (exit status ${code})`);
  else if (code === 0) logger.info(`pre-start finished in ${ms} ms`);
  else
    logger.error(
      `pre-start failed: ${proc.signalCode ? `signal ${proc.signalCode}` : `exit code ${code}`} after ${ms} ms; starting nothing`,
    );
  return code;
}
