// Every app request, whatever kind of server took it, is counted here once: for --max-requests, the
// heartbeat's count and the first-request notice (a worker that has served is no longer booting).

import { config, send } from "./context.ts";

let served = 0;
const retireAfter =
  config.maxRequests > 0
    ? config.maxRequests + Math.floor(Math.random() * (config.maxRequestsJitter + 1))
    : 0;

export function countRequest(): void {
  if (++served === 1) send({ type: "serving" });
  if (served === retireAfter) send({ type: "retire", reason: "max-requests" });
}

export const requestsServed = () => served;

/** The count goes with every heartbeat. (A recycle whose replacement failed to boot is retried by
 * the supervisor's core, which remembers the ask: it is sent once.) */
export function heartbeat(): void {
  send({ type: "heartbeat", requests: served });
}
