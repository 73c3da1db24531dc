// Die with the supervisor. The channel (fd 3) is a socket pair whose other end only the supervisor
// holds: the kernel closes that end when the supervisor exits or dies, SIGKILL and the OOM killer
// included, and this pending read ends at once, from the worker's first line of code on. It replaced
// PR_SET_PDEATHSIG through bun:ffi (1.7–2.9 MB in every worker, set only once ready) and Bun's IPC
// `disconnect` (1–2 s late in a compiled binary). A worker started without a channel watches nothing.

import { config } from "./context.ts";
import { CHANNEL_FD } from "./protocol.ts";

export interface ParentWatch {
  /** Stop watching, so that the channel no longer keeps the process alive (its shutdown is done). */
  unref(): void;
}

export function watchParent(parentLost: () => void): ParentWatch {
  const reader = config.channel ? Bun.file(CHANNEL_FD).stream().getReader() : undefined;
  let watching = true;
  // The supervisor never writes: the read ends only when its end is closed.
  const ended = () => {
    if (watching) parentLost();
  };
  void reader?.read().then(ended, ended);
  return {
    unref() {
      watching = false;
      void reader?.cancel().catch(() => {});
    },
  };
}
