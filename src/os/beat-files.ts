// The workers' heartbeats as files instead of messages: each worker rewrites a one-line file of its
// own under /dev/shm (formatBeat and parseBeat in worker/protocol.ts) at each beat, and the
// supervisor reads them all when the core's heartbeat check asks. A beat then wakes nobody: as
// messages, 4 workers' beats woke the idle supervisor ~2 times a second (docs/BENCHMARKS.md).

import { chownSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Beat, parseBeat } from "../worker/protocol.ts";

export interface BeatFiles {
  /** An empty file for worker `id`, owned by the user it will run as; undefined if it cannot be made
   * (the worker then sends its beats as messages). */
  open(id: number, owner?: { uid?: number; gid?: number }): string | undefined;
  /** Its last beat; undefined before the first or while the worker rewrites it. */
  read(id: number): Beat | undefined;
  /** Worker `id` is gone: remove its file. */
  close(id: number): void;
}

/** `dir`: the supervisor's shared directory (os/shared-dir.ts), removed by its owner. */
export function createBeatFiles(dir: string): BeatFiles {
  const files = new Map<number, string>();
  return {
    open(id, owner) {
      const file = join(dir, `worker-${id}.beat`);
      try {
        writeFileSync(file, "", { mode: 0o600 });
        if (owner?.uid !== undefined) chownSync(file, owner.uid, owner.gid ?? -1);
        files.set(id, file);
        return file;
      } catch {
        return undefined; // a full /dev/shm, say
      }
    },
    read(id) {
      const file = files.get(id);
      if (!file) return undefined;
      try {
        return parseBeat(readFileSync(file, "utf8"));
      } catch {
        return undefined;
      }
    },
    close(id) {
      const file = files.get(id);
      if (!file) return;
      files.delete(id);
      rmSync(file, { force: true });
    },
  };
}
