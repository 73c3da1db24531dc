// The app's shutdown work is what it already writes for Node: `process.on("SIGTERM", handler)`, sync
// or async (Express's `server.close(cb)`, NestJS's enableShutdownHooks, Fastify's close-with-grace).
// Those listeners are held back here instead of being called the moment TERM arrives, and run once
// the worker has stopped taking requests and finished those in flight (Uvicorn's lifespan order), with
// what is left of --graceful-timeout. An app that listens only for SIGINT (Ctrl-C) gets that listener
// run instead. The worker's own listeners are registered with the original methods, before the hold.

import { warn } from "./context.ts";

type Listener = (...args: unknown[]) => unknown;
interface HeldListener {
  signal: string;
  listener: Listener;
  once: boolean;
}

const HELD_SIGNALS = new Set<string | symbol>(["SIGTERM", "SIGINT"]);
let held: HeldListener[] = [];

/** From now on the app's SIGTERM/SIGINT listeners are kept here; the app sees them as registered. */
export function holdAppSignalListeners(): void {
  // biome-ignore lint/suspicious/noExplicitAny: replacing EventEmitter methods of every signature
  const p = process as unknown as Record<string, (...args: any[]) => unknown>;
  const adders = {
    on: false,
    addListener: false,
    prependListener: false,
    once: true,
    prependOnceListener: true,
  };
  for (const [name, once] of Object.entries(adders)) {
    const original = p[name] as (...args: unknown[]) => unknown;
    p[name] = function (this: unknown, event: string | symbol, listener: Listener) {
      if (!HELD_SIGNALS.has(event)) return original.call(this, event, listener);
      held.push({ signal: event as string, listener, once });
      return process;
    };
  }
  for (const name of ["off", "removeListener"]) {
    const original = p[name] as (...args: unknown[]) => unknown;
    p[name] = function (this: unknown, event: string | symbol, listener: Listener) {
      if (!HELD_SIGNALS.has(event)) return original.call(this, event, listener);
      const at = held.findIndex((h) => h.signal === event && h.listener === listener);
      if (at >= 0) held.splice(at, 1);
      return process;
    };
  }
  const removeAll = p.removeAllListeners as (...args: unknown[]) => unknown;
  p.removeAllListeners = function (this: unknown, ...args: unknown[]) {
    const [event] = args;
    held = held.filter((h) => event !== undefined && h.signal !== event);
    if (event !== undefined) return HELD_SIGNALS.has(event as string) ? process : removeAll.call(this, event);
    // Everything else, but the worker's own signal listeners stay: without them TERM would kill it mid-request.
    for (const name of process.eventNames()) if (!HELD_SIGNALS.has(name)) removeAll.call(this, name);
    return process;
  };
  for (const name of ["listeners", "rawListeners"]) {
    const original = p[name] as (...args: unknown[]) => unknown;
    p[name] = function (this: unknown, event: string | symbol) {
      if (!HELD_SIGNALS.has(event)) return original.call(this, event);
      return held.filter((h) => h.signal === event).map((h) => h.listener);
    };
  }
  const count = p.listenerCount as (...args: unknown[]) => unknown;
  p.listenerCount = function (this: unknown, event: string | symbol, ...rest: unknown[]) {
    if (!HELD_SIGNALS.has(event)) return count.call(this, event, ...rest);
    return held.filter((h) => h.signal === event).length;
  };
}

/**
 * Run the app's shutdown listeners (SIGTERM's, else SIGINT's). Resolves "none" when it has none,
 * "settled" when every listener returned a promise and all of them settled (its work is done), and
 * "running" when a listener returned nothing: its work goes on in callbacks, and the process ends when
 * they are done (or the app calls process.exit), as under Node.
 */
export async function runAppShutdown(): Promise<"none" | "settled" | "running"> {
  const term = held.filter((h) => h.signal === "SIGTERM");
  const listeners = term.length > 0 ? term : held.filter((h) => h.signal === "SIGINT");
  if (listeners.length === 0) return "none";
  held = held.filter((h) => !(h.once && listeners.includes(h)));
  const results = listeners.map(({ listener, signal }) => {
    try {
      return listener.call(process, signal);
    } catch (error) {
      warn(`a ${signal} listener threw: ${error instanceof Error ? error.message : String(error)}`);
      return undefined;
    }
  });
  const promises = results.filter((r): r is Promise<unknown> => r instanceof Promise);
  for (const settled of await Promise.allSettled(promises)) {
    if (settled.status === "rejected") warn(`shutdown work failed: ${String(settled.reason)}`);
  }
  return promises.length === listeners.length ? "settled" : "running";
}
