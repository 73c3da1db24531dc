// Refuse a port that someone else holds. SO_REUSEPORT lets any same-user process that also sets it
// share the port silently (a stale supervisor, another program) and traffic would be split with it,
// so probe-bind once *without* reusePort before any worker starts (docs/DESIGN.md).

import { bootError, usageError } from "../core/exit-codes.ts";

export function assertPortFree(host: string, port: number): void {
  try {
    const probe = Bun.listen({ hostname: host, port, socket: { data() {} } });
    probe.stop(true);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "EADDRINUSE") {
      throw bootError(
        `port ${port} on ${host} is already in use (another server, or a supervisor still running?)`,
      );
    }
    if (code === "EACCES") {
      throw bootError(
        `no permission to listen on port ${port} (below 1024 needs root or CAP_NET_BIND_SERVICE)`,
      );
    }
    throw usageError(
      `cannot listen on ${host}:${port}: ${code ?? "unknown or unusable address"} (check -H/--host)`,
    );
  }
}
