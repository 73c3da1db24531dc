// Named timings of the lifecycle, and how they relate to each other.

/**
 * A worker that dies before it served anything died "early": before it was ever ready, or ready but
 * without a request for less than this. Consecutive early deaths in one slot slow its restarts down
 * (crash-loop backoff). A worker that served (however briefly: a request that crashes it under
 * load) or lived longer is restarted at once, so a chaos kill or an OOM kill of a healthy worker
 * costs one worker start (~70 ms), never a backoff delay. PM2's `min_uptime` default is the same 1 s.
 */
export const MIN_UPTIME_MS = 1_000;

/** First delayed restart; the first death soon after start is still restarted at once. */
export const BACKOFF_BASE_MS = 100;
/** ×1.5 per consecutive early death, as PM2's exp_backoff_restart_delay: gentle, yet a broken app
 * reaches the cap in ~12 deaths instead of burning a core on restarts. */
export const BACKOFF_FACTOR = 1.5;
/** Cap: a slot that recovers (the app's database came back, say) is retried at least this often. */
export const BACKOFF_MAX_MS = 15_000;

/**
 * The supervisor's SIGKILL comes this long after the worker's own graceful deadline, so a worker
 * always gets the chance to finish on its own clock first (the worker forces its server closed at
 * `gracefulTimeout`; the supervisor only kills what is truly stuck).
 */
export const KILL_MARGIN_MS = 1_000;

/** Delay before restarting a slot after `failures` consecutive deaths soon after start. */
export function restartBackoff(failures: number): number {
  if (failures <= 1) return 0;
  return Math.min(BACKOFF_MAX_MS, Math.round(BACKOFF_BASE_MS * BACKOFF_FACTOR ** (failures - 2)));
}

/** With --max-memory, the supervisor reads each ready worker's RSS (/proc/PID/statm, one small read)
 * at intervals the core picks from the last samples: as soon as a worker growing
 * MEMORY_GROWTH_BYTES_PER_S could reach the limit, never more often than MEMORY_SAMPLE_MIN_MS, and at
 * most MEMORY_SAMPLE_MAX_MS apart. Near (or over) the limit that is every 50 ms: a leak of 50 MB/s is
 * seen ~2.5 MB past a 150 MiB limit; workers far below it cost one wake-up a second. */
export const MEMORY_SAMPLE_MIN_MS = 50;
export const MEMORY_SAMPLE_MAX_MS = 1_000;
/** The fastest growth sampled for in time: 4× the 50 MB/s leak --max-memory is sized against. */
export const MEMORY_GROWTH_BYTES_PER_S = 200 * 2 ** 20;

/** The next sample's delay, from each ready worker's last RSS (undefined: not sampled yet). */
export function memorySampleDelay(limitBytes: number, rssBytes: (number | undefined)[]): number {
  let ms = MEMORY_SAMPLE_MAX_MS;
  for (const rss of rssBytes) {
    const headroom = rss === undefined ? 0 : limitBytes - rss;
    ms = Math.min(ms, (Math.max(0, headroom) / MEMORY_GROWTH_BYTES_PER_S) * 1_000);
  }
  return Math.max(MEMORY_SAMPLE_MIN_MS, Math.round(ms));
}

/** RSS must stay above --max-memory for this many consecutive samples (≥ 50 ms) before the worker is
 * replaced: a spike shorter than one sample interval is not counted. */
export const MEMORY_SAMPLES_OVER = 2;

/** How often a worker proves its event loop is alive: four beats per --timeout, at least 50 ms and at
 * most 5 s apart (30 s → 5 s). The beat also carries the request count. It goes in a file, which the
 * supervisor reads only when a worker could be past --timeout (core/lifecycle.ts). Decided at each
 * spawn: a worker keeps the interval it was started with. */
export const MAX_HEARTBEAT_MS = 5_000;
export function heartbeatInterval(timeoutMs: number): number {
  return timeoutMs > 0
    ? Math.max(50, Math.min(MAX_HEARTBEAT_MS, Math.floor(timeoutMs / 4)))
    : MAX_HEARTBEAT_MS;
}

/** A worker is hung when no heartbeat came for --timeout, but never sooner than two of its own beats
 * (a worker started under a longer --timeout beats slower than a re-read config may now ask). */
export const hungAfterMs = (timeoutMs: number, heartbeatMs: number) => Math.max(timeoutMs, 2 * heartbeatMs);
