// Every restart reason, in the order they are shown (status table, metrics labels).

import type { RestartReason } from "./types.ts";

export const RESTART_REASONS: readonly RestartReason[] = [
  "crash",
  "timeout",
  "memory",
  "max-requests",
  "reload",
];
