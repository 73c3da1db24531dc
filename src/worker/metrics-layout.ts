// The layout of a worker's request-metrics file: one Float64Array that the worker writes (it alone)
// and the supervisor reads at scrape time. Shared memory (a file under /dev/shm, mapped by both) and
// not messages: a count is in the supervisor's view the moment the request is done, so a worker that
// is SIGKILLed right after serving loses none of it, and a request costs no message (docs/DESIGN.md).
// Pure data: imported by the worker and by the supervisor.

export const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"] as const;
/** Status codes 100..599 have a counter each; anything else is counted as "other". */
const FIRST_CODE = 100;
const CODES = 501;
export const OTHER_CODE = FIRST_CODE + CODES - 1;
/** Upper bounds in seconds: from a cache hit (5 ms) to a slow report (10 s), as web handlers go. */
export const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

/** Float64 slots: [in flight, count, sum of seconds, buckets (non-cumulative, +Inf last)…, counters…]. */
export const IN_FLIGHT = 0;
export const COUNT = 1;
export const SUM = 2;
export const FIRST_BUCKET = 3;
export const FIRST_COUNTER = FIRST_BUCKET + BUCKETS.length + 1;
export const SLOTS = FIRST_COUNTER + METHODS.length * CODES;
export const FILE_BYTES = SLOTS * Float64Array.BYTES_PER_ELEMENT;

export function methodIndex(method: string): number {
  switch (method) {
    case "GET":
      return 0;
    case "HEAD":
      return 1;
    case "POST":
      return 2;
    case "PUT":
      return 3;
    case "PATCH":
      return 4;
    case "DELETE":
      return 5;
    case "OPTIONS":
      return 6;
    default:
      return 7;
  }
}

/** The counter slot of (method, status). */
export function counterSlot(method: number, status: number): number {
  const code = status >= FIRST_CODE && status < OTHER_CODE ? status - FIRST_CODE : CODES - 1;
  return FIRST_COUNTER + method * CODES + code;
}

/** The (method, code label) of a counter slot, for the exposition. */
export function counterLabels(slot: number): { method: string; code: string } {
  const i = slot - FIRST_COUNTER;
  const code = i % CODES;
  return {
    method: METHODS[Math.floor(i / CODES)] ?? "other",
    code: code === CODES - 1 ? "other" : String(code + FIRST_CODE),
  };
}

/** The bucket slot of a duration in seconds. */
export function bucketSlot(seconds: number): number {
  let i = 0;
  while (i < BUCKETS.length && seconds > (BUCKETS[i] as number)) i++;
  return FIRST_BUCKET + i;
}
