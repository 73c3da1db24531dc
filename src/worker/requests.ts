// Every app request, whatever kind of server took it, is counted here once: for --max-requests, the
// heartbeat's count and the first-request notice (a worker that has served is no longer booting).
// The heartbeat and the count go in the worker's beat file (under /dev/shm, read by the supervisor
// on its own timer); only a worker without one sends them as messages.

import { config, send } from "./context.ts";
import { formatBeat } from "./protocol.ts";

let served = 0;
let beats = 0;
const retireAfter =
  config.maxRequests > 0
    ? config.maxRequests + Math.floor(Math.random() * (config.maxRequestsJitter + 1))
    : 0;

export function countRequest(): void {
  if (++served === 1) send({ type: "serving" });
  if (served === retireAfter) send({ type: "retire", reason: "max-requests", requests: served });
}

export const requestsServed = () => served;

/** From the event loop, every heartbeatMs: a loop blocked by a handler beats no more, and --timeout
 * catches it. A file write, not a mapping: Bun.mmap would cost every worker 0.7 MB of RSS, and the
 * write is one every few seconds. (A recycle whose replacement failed to boot is retried by the
 * supervisor's core, which remembers the ask: it is sent once.) */
export function heartbeat(): void {
  if (config.beatFile)
    void Bun.write(config.beatFile, formatBeat(++beats, served, performance.now())).catch(() => {});
  else send({ type: "heartbeat", requests: served });
}
