// With --admin, the app's requests are counted across all workers with no change to the app: each
// worker records into a file of its own under /dev/shm (src/worker/request-metrics.ts), and the
// supervisor maps every file and adds them up when asked. A worker that is gone (crashed, SIGKILLed,
// recycled, replaced by a reload) has its last counts folded into the totals, so counters never go
// backwards and include every request a worker completed, even one it served just before SIGKILL.

import { chownSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  BUCKETS,
  COUNT,
  counterLabels,
  FILE_BYTES,
  FIRST_BUCKET,
  FIRST_COUNTER,
  IN_FLIGHT,
  SLOTS,
  SUM,
} from "../worker/metrics-layout.ts";
import type { HttpStats, HttpTotals } from "./types.ts";

export interface RequestMetrics {
  /** A zeroed file for worker `id`, owned by the user it will run as; its path goes in its config. */
  open(id: number, owner?: { uid?: number; gid?: number }): string;
  spawned(id: number, pid: number): void;
  /** Worker `id` is gone: fold its counts into the totals and remove its file. */
  close(id: number): void;
  totals(): HttpTotals;
  /** One live worker's stats, by pid. */
  byPid(pid: number): HttpStats | undefined;
  /** Let go of the mappings (the files go with the shared directory). */
  dispose(): void;
}

/** `dir`: the supervisor's shared directory (os/shared-dir.ts), removed by its owner. */
export function createRequestMetrics(dir: string): RequestMetrics {
  const gone = new Float64Array(SLOTS);
  const live = new Map<number, { file: string; slots: Float64Array; pid?: number }>();
  return {
    open(id, owner) {
      const file = join(dir, `worker-${id}.f64`);
      writeFileSync(file, new Uint8Array(FILE_BYTES), { mode: 0o600 });
      if (owner?.uid !== undefined) chownSync(file, owner.uid, owner.gid ?? -1);
      live.set(id, { file, slots: new Float64Array(Bun.mmap(file).buffer) });
      return file;
    },
    spawned(id, pid) {
      const entry = live.get(id);
      if (entry) entry.pid = pid;
    },
    close(id) {
      const entry = live.get(id);
      if (!entry) return;
      for (let i = COUNT; i < SLOTS; i++) gone[i] = (gone[i] as number) + (entry.slots[i] as number);
      live.delete(id);
      // The mapping goes with the array (garbage-collected); unlinking a mapped file is safe on Linux.
      unlinkSync(entry.file);
    },
    totals() {
      const sum = Float64Array.from(gone);
      sum[IN_FLIGHT] = 0;
      for (const { slots } of live.values())
        for (let i = 0; i < SLOTS; i++) sum[i] = (sum[i] as number) + (slots[i] as number);
      const requests: HttpTotals["requests"] = [];
      for (let i = FIRST_COUNTER; i < SLOTS; i++) {
        const count = sum[i] as number;
        if (count > 0) requests.push({ ...counterLabels(i), count });
      }
      return { ...statsOf(sum), upperBounds: BUCKETS, requests };
    },
    byPid(pid) {
      for (const entry of live.values()) if (entry.pid === pid) return statsOf(entry.slots);
      return undefined;
    },
    dispose() {
      live.clear(); // the files go with the shared directory, which its owner removes
    },
  };
}

// --- internal ---

function statsOf(slots: Float64Array): HttpStats {
  return {
    inFlight: slots[IN_FLIGHT] as number,
    count: slots[COUNT] as number,
    sumSeconds: slots[SUM] as number,
    buckets: Array.from(slots.subarray(FIRST_BUCKET, FIRST_COUNTER)),
  };
}
