// --access-log: one line per request on stdout. Text: `<ISO time> [worker 1] GET /path 200 1.2ms pid 123`;
// JSON (--log-format json): one object per line. The path has no query string (it may hold secrets).
// A handler that returns nothing (a WebSocket upgrade) is logged as 101; one that throws as 500.
// Lines of one event-loop turn are written together, synchronously (a pending async write would be
// lost at process.exit), and once more on exit.

import { config } from "./context.ts";
import type { WorkerConfig } from "./protocol.ts";

/** Access-log lines are written together once per event-loop turn, or sooner past this many characters. */
const ACCESS_LOG_BUFFER_CHARS = 64 * 1024;

export type RequestLogger = (method: string, url: string, status: number, start: number) => void;

/** Undefined when --access-log is off: callers then take their plain, unlogged path. */
export const logRequest: RequestLogger | undefined = config.accessLog ? accessLogger(config) : undefined;

// --- internal ---

function accessLogger(cfg: WorkerConfig): RequestLogger {
  const { writeSync } = require("node:fs") as typeof import("node:fs");
  const { slot } = cfg;
  const pid = process.pid;
  const line =
    cfg.logFormat === "json"
      ? (time: string, method: string, path: string, status: number, ms: number) =>
          `{"time":"${time}","level":"info","msg":"request","method":${JSON.stringify(method)},"path":${JSON.stringify(path)},"status":${status},"durationMs":${ms},"worker":${slot},"pid":${pid}}\n`
      : (time: string, method: string, path: string, status: number, ms: number) =>
          `${time} [worker ${slot}] ${method} ${path} ${status} ${ms}ms pid ${pid}\n`;
  // One ISO time string per millisecond: at tens of thousands of requests a second, most lines share it.
  let lastMs = 0;
  let lastTime = "";
  let pending = "";
  let scheduled = false;
  let broken = false;
  const flush = () => {
    scheduled = false;
    if (!pending) return;
    const bytes = Buffer.from(pending);
    pending = "";
    for (let offset = 0; offset < bytes.length && !broken; ) {
      try {
        offset += writeSync(1, bytes, offset);
      } catch (error) {
        // A non-blocking stdout that is full: wait for the reader. Closed (EPIPE): stop logging, keep serving.
        if ((error as NodeJS.ErrnoException).code === "EAGAIN") Bun.sleepSync(1);
        else broken = true;
      }
    }
  };
  process.on("exit", flush);
  return (method, url, status, start) => {
    const ms = Math.round((performance.now() - start) * 100) / 100;
    const now = Date.now();
    if (now !== lastMs) {
      lastMs = now;
      lastTime = new Date(now).toISOString();
    }
    pending += line(lastTime, method, pathOf(url), status, ms);
    if (pending.length > ACCESS_LOG_BUFFER_CHARS) flush();
    else if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
}

/** The path of a URL (absolute, as Bun's Request has it, or a path, as node:http's), without the
 * query: cheaper than `new URL()` on every request. */
function pathOf(url: string): string {
  const slash = url.startsWith("/") ? 0 : url.indexOf("/", url.indexOf("//") + 2);
  if (slash < 0) return "/";
  const query = url.indexOf("?", slash);
  return query < 0 ? url.slice(slash) : url.slice(slash, query);
}
