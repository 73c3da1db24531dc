// How long a control request (`supervisor reload`, `scale`, `stop`) may take before its caller is told
// "not done": a bound that follows the work the request sets off, decided from the state it finds.

import { activeWorkers, upgradeDeadlineMs } from "./lifecycle.ts";
import { KILL_MARGIN_MS } from "./timings.ts";
import type { State } from "./types.ts";

export type ControlRequest =
  | { type: "reload" }
  | { type: "scale"; workers: number }
  | { type: "stop" }
  | { type: "upgrade" };

/** Slack for the shell's own turn (the workers' channels, the event loop) on top of the lifecycle's timers. */
export const REQUEST_SLACK_MS = 1_000;

export function requestDeadlineMs(s: State, request: ControlRequest): number {
  const { config } = s;
  /** One fresh worker, from spawn to ready or to its boot-timeout kill. */
  const boot = config.bootTimeoutMs + KILL_MARGIN_MS;
  /** One worker, from TERM to its exit or its SIGKILL after the grace. */
  const drain = config.gracefulTimeoutMs + KILL_MARGIN_MS;
  const workers = Math.max(s.target, activeWorkers(s).length);
  // A rolling reload starts one replacement at a time: one boot per worker, plus one for a
  // replacement already starting (a recycled worker's); a reload asked during one runs again after it.
  const reload = (workers + 1) * boot * (s.reload ? 2 : 1) + drain;
  switch (request.type) {
    case "reload":
      return reload + REQUEST_SLACK_MS;
    case "scale":
      return boot + drain + (s.reload ? reload : 0) + REQUEST_SLACK_MS;
    case "stop":
      return config.shutdownDelayMs + drain + REQUEST_SLACK_MS;
    case "upgrade":
      // The new supervisor gets ready (or is stopped: one more grace), then we drain and exit.
      return upgradeDeadlineMs(s) + 2 * drain + REQUEST_SLACK_MS;
  }
}
