// With --admin, every request is recorded in this worker's metrics file (metrics-layout.ts): in flight
// while the app handles it; then its method and status, and its duration in the histogram.

import { config } from "./context.ts";
import { bucketSlot, COUNT, counterSlot, IN_FLIGHT, methodIndex, SUM } from "./metrics-layout.ts";

export interface RequestRecorder {
  start(): void;
  /** `startMs`: performance.now() when the request arrived. */
  end(method: string, status: number, startMs: number): void;
}

/** Undefined without --admin: the request path then records nothing. */
export const recorder: RequestRecorder | undefined = config.metricsFile
  ? openRecorder(config.metricsFile)
  : undefined;

// --- internal ---

function openRecorder(file: string): RequestRecorder {
  const slots = new Float64Array(Bun.mmap(file).buffer);
  return {
    start() {
      slots[IN_FLIGHT] = (slots[IN_FLIGHT] as number) + 1;
    },
    end(method, status, startMs) {
      const seconds = (performance.now() - startMs) / 1000;
      const counter = counterSlot(methodIndex(method), status);
      const bucket = bucketSlot(seconds);
      slots[counter] = (slots[counter] as number) + 1;
      slots[bucket] = (slots[bucket] as number) + 1;
      slots[SUM] = (slots[SUM] as number) + seconds;
      slots[COUNT] = (slots[COUNT] as number) + 1;
      slots[IN_FLIGHT] = (slots[IN_FLIGHT] as number) - 1;
    },
  };
}
