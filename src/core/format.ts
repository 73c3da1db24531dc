// Words for log lines: how a worker ended, how long it lived.

/** "exit code 1", "signal SIGKILL (sent by the supervisor: --timeout)", and for a SIGKILL nobody here
 * explains, "signal SIGKILL (perhaps out of memory?)". `killedBecause`: why the supervisor sent it. */
export function describeExit(code: number | null, signal: string | null, killedBecause?: string): string {
  if (signal === "SIGKILL" && killedBecause)
    return `signal SIGKILL (sent by the supervisor: ${killedBecause})`;
  if (signal) return signal === "SIGKILL" ? "signal SIGKILL (perhaps out of memory?)" : `signal ${signal}`;
  return `exit code ${code ?? "unknown"}`;
}

/** "850 ms", "12.3 s", "4 min 05 s", "2 h 03 min". */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  const s = Math.floor(ms / 1_000);
  if (s < 3_600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3_600)} h ${String(Math.floor(s / 60) % 60).padStart(2, "0")} min`;
}
