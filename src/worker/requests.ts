// Every app request, whatever kind of server took it, is counted here once: for --max-requests, the
// heartbeat's count and the first-request notice (a worker that has served is no longer booting).
// The heartbeat and the count go in the worker's beat file (shared memory, read by the supervisor on
// its own timer); only a worker without one sends them as messages.

import { config, send } from "./context.ts";
import { BEAT_SLOTS } from "./protocol.ts";

let served = 0;
const retireAfter =
  config.maxRequests > 0
    ? config.maxRequests + Math.floor(Math.random() * (config.maxRequestsJitter + 1))
    : 0;
const beatSlots = config.beatFile ? mapBeatFile(config.beatFile) : undefined;

export function countRequest(): void {
  ++served;
  if (beatSlots) beatSlots[BEAT_SLOTS.requests] = served;
  if (served === 1) send({ type: "serving" });
  if (served === retireAfter) send({ type: "retire", reason: "max-requests" });
}

export const requestsServed = () => served;

/** From the event loop, every heartbeatMs: a loop blocked by a handler beats no more, and --timeout
 * catches it. (A recycle whose replacement failed to boot is retried by the supervisor's core, which
 * remembers the ask: it is sent once.) */
export function heartbeat(): void {
  if (beatSlots) beatSlots[BEAT_SLOTS.beats] = (beatSlots[BEAT_SLOTS.beats] as number) + 1;
  else send({ type: "heartbeat", requests: served });
}

// --- internal ---

function mapBeatFile(file: string): Float64Array | undefined {
  try {
    return new Float64Array(Bun.mmap(file).buffer);
  } catch {
    return undefined; // beats go as messages
  }
}
