// The workers' heartbeats in shared memory instead of messages: each worker counts its beats and its
// requests in a small file of its own that both processes map (BEAT_SLOTS in worker/protocol.ts), and
// the supervisor reads them all on one timer (the core's heartbeat sampling). A beat then wakes
// nobody: as messages, 4 workers' beats woke the idle supervisor ~2 times a second (docs/BENCHMARKS.md).

import { chownSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BEAT_FILE_BYTES, BEAT_SLOTS } from "../worker/protocol.ts";

export interface Beat {
  beats: number;
  requests: number;
}

export interface BeatFiles {
  /** A zeroed file for worker `id`, owned by the user it will run as; undefined if it cannot be made
   * (the worker then sends its beats as messages). */
  open(id: number, owner?: { uid?: number; gid?: number }): string | undefined;
  read(id: number): Beat | undefined;
  /** Worker `id` is gone: remove its file. */
  close(id: number): void;
}

/** `dir`: the supervisor's shared directory (os/shared-dir.ts), removed by its owner. */
export function createBeatFiles(dir: string): BeatFiles {
  const live = new Map<number, { file: string; slots: Float64Array }>();
  return {
    open(id, owner) {
      const file = join(dir, `worker-${id}.beat`);
      try {
        writeFileSync(file, new Uint8Array(BEAT_FILE_BYTES), { mode: 0o600 });
        if (owner?.uid !== undefined) chownSync(file, owner.uid, owner.gid ?? -1);
        live.set(id, { file, slots: new Float64Array(Bun.mmap(file).buffer) });
        return file;
      } catch {
        return undefined; // a full /dev/shm, say
      }
    },
    read(id) {
      const slots = live.get(id)?.slots;
      if (!slots) return undefined;
      return { beats: slots[BEAT_SLOTS.beats] as number, requests: slots[BEAT_SLOTS.requests] as number };
    },
    close(id) {
      const entry = live.get(id);
      if (!entry) return;
      live.delete(id);
      // The mapping goes with the array (garbage-collected); unlinking a mapped file is safe on Linux.
      rmSync(entry.file, { force: true });
    },
  };
}
