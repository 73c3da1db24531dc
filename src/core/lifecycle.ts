// The decision core: which worker to start, stop, kill or restart, and when to give up.
// `decide(state, event, now)` is pure: it returns the next state and the effects for the shell to
// perform (src/supervisor.ts). Everything is "reconcile toward the target" (Gunicorn's manage_workers):
// a crash, TTIN/TTOU, a reload and a recycled worker all end in `reconcile`.

import { ExitCode } from "../exit-codes.ts";
import { describeExit, formatDuration } from "./format.ts";
import { KILL_MARGIN_MS, MEMORY_SAMPLES_OVER, MIN_UPTIME_MS, restartBackoff } from "./timings.ts";
import type {
  Config,
  Decision,
  Effect,
  Event,
  RestartReason,
  RetireReason,
  Signal,
  State,
  WorkerRecord,
} from "./types.ts";

export function initialState(config: Config, now: number): State {
  return {
    config,
    phase: "booting",
    target: config.workers,
    nextId: 1,
    workers: [],
    failures: {},
    restartPending: [],
    startedAt: now,
    exitCode: ExitCode.OK,
    bootErrorShown: false,
    restarts: noRestarts(),
    slotRestarts: {},
    reloadSeq: 0,
  };
}

/** Zero replacements for every reason (a fresh supervisor, or one not started yet). */
export const noRestarts = (): Record<RestartReason, number> => ({
  crash: 0,
  timeout: 0,
  memory: 0,
  "max-requests": 0,
  reload: 0,
});

export function decide(state: State, event: Event, now: number): Decision {
  const s = structuredClone(state);
  const fx: Effect[] = [];
  const ctx: Ctx = { s, fx, now };
  handle(ctx, event);
  return { state: s, effects: fx };
}

/** Workers that serve or are about to: not draining. */
export const activeWorkers = (s: State) => s.workers.filter((w) => w.phase !== "draining");
export const readyWorkers = (s: State) => s.workers.filter((w) => w.phase === "ready");

// --- internal ---

interface Ctx {
  s: State;
  fx: Effect[];
  now: number;
}

const bootTimer = (id: number) => `boot:${id}`;
const killTimer = (id: number) => `kill:${id}`;
const restartTimer = (slot: number) => `restart:${slot}`;
const heartbeatTimer = (id: number) => `heartbeat:${id}`;

function handle(ctx: Ctx, ev: Event): void {
  switch (ev.type) {
    case "start":
      return reconcile(ctx);
    case "spawned":
      return withWorker(ctx, ev.id, (w) => {
        w.pid = ev.pid;
      });
    case "spawn-failed":
      return withWorker(ctx, ev.id, (w) => {
        w.bootError = `could not start a worker process: ${ev.message}`;
        workerGone(ctx, w, null, null);
      });
    case "ready":
      return withWorker(ctx, ev.id, (w) => workerReady(ctx, w));
    case "boot-error":
      return withWorker(ctx, ev.id, (w) => {
        w.bootError = ev.message;
      });
    case "heartbeat":
      return withWorker(ctx, ev.id, (w) => heartbeat(ctx, w, ev.requests, ev.rssBytes));
    case "exit":
      return withWorker(ctx, ev.id, (w) => workerGone(ctx, w, ev.code, ev.signal));
    case "timer":
      return timerFired(ctx, ev.key);
    case "signal":
      return signalReceived(ctx, ev.signal);
    case "retire":
      return withWorker(ctx, ev.id, (w) => retire(ctx, w, ev.reason));
    case "scale":
      return scaleTo(ctx, ev.workers);
    case "stop":
      return shutdown(ctx, "stop requested");
    case "configure":
      // New timeouts and limits apply from now on; a changed worker count is a "scale" of its own.
      Object.assign(ctx.s.config, ev.config);
      return;
  }
}

function withWorker(ctx: Ctx, id: number, fn: (w: WorkerRecord) => void): void {
  const w = ctx.s.workers.find((x) => x.id === id);
  if (w) fn(w);
}

function log(ctx: Ctx, level: "info" | "warn" | "error", message: string): void {
  ctx.fx.push({ type: "log", level, message });
}

const label = (w: WorkerRecord) => `worker ${w.slot} (pid ${w.pid ?? "?"})`;

/** Start, stop and replace workers until the live set matches the target. */
function reconcile(ctx: Ctx): void {
  const { s } = ctx;
  if (s.phase === "stopping") return;
  // Too many (TTOU): drain the highest slots, newest first, so slot numbers stay dense.
  for (const w of activeWorkers(s).filter((x) => x.slot >= s.target)) drainWorker(ctx, w, "scaled down");
  // Missing (first start, crash, TTIN): one worker per empty slot unless the slot is backing off.
  for (let slot = 0; slot < s.target; slot++) {
    const filled = activeWorkers(s).some((w) => w.slot === slot);
    if (!filled && !s.restartPending.includes(slot)) spawnWorker(ctx, slot);
  }
  // Rolling replacement (reload, recycling): one fresh worker at a time, old one drained once it is ready.
  if (s.phase !== "running") return;
  if (s.workers.some((w) => w.replacementOf !== undefined)) return;
  const old = readyWorkers(s).find((w) => w.retiring && w.slot < s.target);
  if (old) spawnWorker(ctx, old.slot, old.id);
}

function spawnWorker(ctx: Ctx, slot: number, replacementOf?: number): void {
  const { s } = ctx;
  const w: WorkerRecord = {
    id: s.nextId++,
    slot,
    phase: "starting",
    startedAt: ctx.now,
    requests: 0,
    overMemory: 0,
  };
  if (replacementOf !== undefined) w.replacementOf = replacementOf;
  s.workers.push(w);
  ctx.fx.push({ type: "spawn", id: w.id, slot });
  ctx.fx.push({ type: "set-timer", key: bootTimer(w.id), ms: s.config.bootTimeoutMs });
}

/** Ask a worker to finish its requests and exit; SIGKILL it if it is still there after the grace. */
function drainWorker(ctx: Ctx, w: WorkerRecord, reason: string): void {
  if (w.phase === "draining") return;
  w.phase = "draining";
  w.stopReason = reason;
  ctx.fx.push({ type: "clear-timer", key: bootTimer(w.id) });
  ctx.fx.push({ type: "clear-timer", key: heartbeatTimer(w.id) });
  ctx.fx.push({ type: "kill", id: w.id, signal: "SIGTERM" });
  ctx.fx.push({
    type: "set-timer",
    key: killTimer(w.id),
    ms: ctx.s.config.gracefulTimeoutMs + KILL_MARGIN_MS,
  });
}

function workerReady(ctx: Ctx, w: WorkerRecord): void {
  const { s } = ctx;
  if (w.phase !== "starting") return;
  w.phase = "ready";
  w.readyAt = ctx.now;
  ctx.fx.push({ type: "clear-timer", key: bootTimer(w.id) });
  armHeartbeat(ctx, w);
  // A restarted (or added) worker says so; rolling replacements are summed up by their own lines.
  if (s.phase === "running" && w.replacementOf === undefined) {
    log(ctx, "info", `${label(w)} ready in ${formatDuration(ctx.now - w.startedAt)}`);
  }
  if (w.replacementOf !== undefined) {
    const old = s.workers.find((x) => x.id === w.replacementOf);
    delete w.replacementOf;
    if (old) {
      countRestart(ctx, old.slot, old.retiring === "max-memory" ? "memory" : (old.retiring ?? "reload"));
      drainWorker(ctx, old, old.retiring ?? "replaced");
    }
  }
  if (s.phase === "booting" && readyWorkers(s).length >= s.target) {
    s.phase = "running";
    const pids = readyWorkers(s)
      .map((x) => x.pid)
      .join(", ");
    log(
      ctx,
      "info",
      `ready: ${s.target} worker${s.target === 1 ? "" : "s"} listening on ${s.config.address} in ${formatDuration(ctx.now - s.startedAt)} (pids ${pids})`,
    );
  }
  reconcile(ctx);
  finishReloadIfDone(ctx);
}

/** The worker's event loop is alive; check its request count (reported) and memory (read from /proc). */
function heartbeat(ctx: Ctx, w: WorkerRecord, requests: number, rssBytes: number | undefined): void {
  w.requests = requests;
  if (rssBytes !== undefined) w.rssBytes = rssBytes;
  armHeartbeat(ctx, w);
  const limit = ctx.s.config.maxMemoryBytes;
  if (limit <= 0 || rssBytes === undefined) return;
  w.overMemory = rssBytes > limit ? w.overMemory + 1 : 0;
  if (w.overMemory >= MEMORY_SAMPLES_OVER) {
    w.overMemory = 0;
    retire(ctx, w, "max-memory");
  }
}

function countRestart(ctx: Ctx, slot: number, reason: RestartReason): void {
  ctx.s.restarts[reason]++;
  ctx.s.slotRestarts[slot] = (ctx.s.slotRestarts[slot] ?? 0) + 1;
}

function armHeartbeat(ctx: Ctx, w: WorkerRecord): void {
  if (ctx.s.config.timeoutMs <= 0 || w.phase !== "ready") return;
  ctx.fx.push({ type: "set-timer", key: heartbeatTimer(w.id), ms: ctx.s.config.timeoutMs });
}

function finishReloadIfDone(ctx: Ctx): void {
  const { s } = ctx;
  if (!s.reload || s.workers.some((w) => w.retiring === "reload" && w.phase !== "draining")) return;
  const message = `reload finished: ${s.reload.workers} workers replaced in ${formatDuration(ctx.now - s.reload.startedAt)}`;
  log(ctx, "info", message);
  s.lastReload = { seq: s.reloadSeq, ok: true, message };
  delete s.reload;
}

/** A worker process is gone: expected (drained, stopping) or not (crash, killed, failed to boot). */
function workerGone(ctx: Ctx, w: WorkerRecord, code: number | null, signal: string | null): void {
  const { s } = ctx;
  s.workers = s.workers.filter((x) => x.id !== w.id);
  for (const key of [bootTimer(w.id), killTimer(w.id), heartbeatTimer(w.id)])
    ctx.fx.push({ type: "clear-timer", key });
  const how = describeExit(code, signal);
  const uptime = formatDuration(ctx.now - w.startedAt);

  if (s.phase === "stopping" || w.phase === "draining") {
    const why = w.stopReason ? ` (${w.stopReason})` : "";
    // A worker still starting Bun when TERM came has no handler yet and dies of it: that is a clean stop too.
    const clean = (code === 0 && !signal) || signal === "SIGTERM";
    log(ctx, clean ? "info" : "warn", `${label(w)} stopped${why}: ${how} after ${uptime}`);
    if (s.phase === "stopping") return exitWhenEmpty(ctx);
    return reconcile(ctx);
  }

  if (w.replacementOf !== undefined) return replacementFailed(ctx, w, how);

  if (s.phase === "booting" && w.readyAt === undefined) {
    if (!s.bootErrorShown) {
      s.bootErrorShown = true;
      const detail = w.bootError ?? `the worker exited with ${how} before it was ready`;
      log(ctx, "error", `worker failed to boot: ${detail}`);
    }
    return stopAll(ctx, ExitCode.BOOT, "boot failed");
  }

  // Unexpected death of a serving (or restarting) worker: replace it in the same slot.
  countRestart(ctx, w.slot, w.killedFor ?? "crash");
  const early = w.readyAt === undefined || ctx.now - w.readyAt < MIN_UPTIME_MS;
  const failures = early ? (s.failures[w.slot] ?? 0) + 1 : 1;
  s.failures[w.slot] = failures;
  if (w.bootError) log(ctx, "error", `${label(w)} failed to boot: ${w.bootError}`);
  const limit = s.config.maxRestarts;
  if (limit > 0 && failures > limit) {
    log(
      ctx,
      "error",
      `${label(w)} died: ${how}, ${failures} early deaths in a row; giving up (--max-restarts ${limit})`,
    );
    return stopAll(ctx, ExitCode.CRASH_LOOP, "crash loop");
  }
  const delay = restartBackoff(failures);
  const then =
    delay > 0 ? `restarting in ${formatDuration(delay)} (${failures} early deaths in a row)` : "restarting";
  log(ctx, delay > 0 ? "error" : "warn", `${label(w)} died: ${how} after ${uptime}; ${then}`);
  if (delay > 0) {
    s.restartPending.push(w.slot);
    ctx.fx.push({ type: "set-timer", key: restartTimer(w.slot), ms: delay });
  }
  reconcile(ctx);
}

/** A fresh worker meant to take over from a retiring one never got ready: keep the old one serving. */
function replacementFailed(ctx: Ctx, w: WorkerRecord, how: string): void {
  const { s } = ctx;
  const why = w.bootError ?? `the new worker exited with ${how} before it was ready`;
  const old = s.workers.find((x) => x.id === w.replacementOf);
  const reason = old?.retiring ?? "reload";
  // Give up this round for every worker retiring for the same reason: a broken deploy stops here.
  const kept = s.workers.filter((x) => x.retiring === reason && x.phase !== "draining");
  for (const x of kept) delete x.retiring;
  if (reason === "reload") {
    delete s.reload;
    const message = `reload failed, keeping ${kept.length} running worker(s) on the old code: ${why}`;
    log(ctx, "error", message);
    s.lastReload = { seq: s.reloadSeq, ok: false, message };
  } else {
    log(ctx, "error", `could not replace ${old ? label(old) : "a worker"} (${reason}), keeping it: ${why}`);
  }
  reconcile(ctx);
}

function retire(ctx: Ctx, w: WorkerRecord, reason: RetireReason): void {
  if (w.phase !== "ready" || w.retiring || ctx.s.phase !== "running") return;
  w.retiring = reason;
  const why =
    reason === "max-memory"
      ? `RSS ${Math.round((w.rssBytes ?? 0) / 2 ** 20)} MiB above --max-memory ${Math.round(ctx.s.config.maxMemoryBytes / 2 ** 20)} MiB`
      : `${reason}, after ${w.requests} requests`;
  log(ctx, "info", `${label(w)} will be replaced (${why})`);
  reconcile(ctx);
}

function timerFired(ctx: Ctx, key: string): void {
  const { s } = ctx;
  const [kind, n] = key.split(":");
  const num = Number(n);
  if (kind === "restart") {
    s.restartPending = s.restartPending.filter((slot) => slot !== num);
    return reconcile(ctx);
  }
  if (kind === "shutdown-delay") {
    if (s.pendingDrain !== undefined) stopAll(ctx, s.exitCode, `${s.pendingDrain}, after --shutdown-delay`);
    return;
  }
  const w = s.workers.find((x) => x.id === num);
  if (!w) return;
  if (kind === "boot" && w.phase === "starting") {
    w.bootError ??= `not ready within --boot-timeout ${s.config.bootTimeoutMs / 1000}s`;
    log(
      ctx,
      "error",
      `${label(w)} did not become ready within ${formatDuration(s.config.bootTimeoutMs)}; killing it`,
    );
    ctx.fx.push({ type: "kill", id: w.id, signal: "SIGKILL" });
  } else if (kind === "kill") {
    log(
      ctx,
      "warn",
      `${label(w)} still running ${formatDuration(s.config.gracefulTimeoutMs)} after TERM; killing it`,
    );
    ctx.fx.push({ type: "kill", id: w.id, signal: "SIGKILL" });
  } else if (kind === "heartbeat" && w.phase === "ready") {
    w.killedFor = "timeout";
    log(
      ctx,
      "error",
      `${label(w)} sent no heartbeat for ${formatDuration(s.config.timeoutMs)} (hung?); killing it`,
    );
    ctx.fx.push({ type: "kill", id: w.id, signal: "SIGKILL" });
  }
}

function signalReceived(ctx: Ctx, signal: Signal): void {
  const { s } = ctx;
  switch (signal) {
    case "SIGTERM":
      return shutdown(ctx, `${signal} received`);
    case "SIGINT":
      // Ctrl-C twice: the second one does not wait for requests to finish.
      if (s.phase === "stopping") return quickStop(ctx, "SIGINT received again");
      return shutdown(ctx, `${signal} received`);
    case "SIGQUIT":
      return quickStop(ctx, "SIGQUIT received");
    case "SIGHUP":
      return startReload(ctx);
    case "SIGTTIN":
      return scaleTo(ctx, s.target + 1);
    case "SIGTTOU":
      return scaleTo(ctx, s.target - 1);
    case "SIGUSR1":
    case "SIGUSR2":
      for (const w of s.workers) ctx.fx.push({ type: "kill", id: w.id, signal });
      return;
  }
}

function startReload(ctx: Ctx): void {
  const { s } = ctx;
  s.reloadSeq++;
  if (s.phase !== "running") {
    const message = `reload ignored: the supervisor is ${s.phase}`;
    log(ctx, "warn", message);
    s.lastReload = { seq: s.reloadSeq, ok: false, message };
    return;
  }
  const serving = readyWorkers(s).filter((w) => w.replacementOf === undefined);
  for (const w of serving) w.retiring = "reload";
  s.reload = { startedAt: ctx.now, workers: serving.length };
  log(ctx, "info", `reloading: replacing ${serving.length} workers one at a time`);
  reconcile(ctx);
}

function scaleTo(ctx: Ctx, workers: number): void {
  const { s } = ctx;
  if (s.phase === "stopping") return;
  const target = Math.max(1, workers);
  if (target === s.target) {
    log(ctx, "warn", `scale ignored: already at ${target} worker${target === 1 ? "" : "s"} (never below 1)`);
    return;
  }
  log(ctx, "info", `scaling from ${s.target} to ${target} workers`);
  s.target = target;
  s.restartPending = s.restartPending.filter((slot) => slot < target);
  reconcile(ctx);
}

/** A requested shutdown: with --shutdown-delay, keep serving that long first (the orchestrator is still
 * removing this instance from its load balancer; readiness already says no), then drain. */
function shutdown(ctx: Ctx, reason: string): void {
  const { s } = ctx;
  const delay = s.config.shutdownDelayMs;
  if (s.phase === "stopping") return;
  if (delay <= 0 || s.workers.length === 0) return stopAll(ctx, s.exitCode, reason);
  s.phase = "stopping";
  s.pendingDrain = reason;
  for (const slot of s.restartPending) ctx.fx.push({ type: "clear-timer", key: restartTimer(slot) });
  s.restartPending = [];
  delete s.reload;
  log(
    ctx,
    "info",
    `shutting down (${reason}): serving ${formatDuration(delay)} more (--shutdown-delay), then draining`,
  );
  ctx.fx.push({ type: "set-timer", key: "shutdown-delay:0", ms: delay });
}

/** Graceful shutdown: every worker drains; the supervisor exits once the last one is gone. */
function stopAll(ctx: Ctx, exitCode: number, reason: string): void {
  const { s } = ctx;
  if (s.phase === "stopping" && s.pendingDrain === undefined) return;
  delete s.pendingDrain;
  s.phase = "stopping";
  s.exitCode = exitCode;
  for (const slot of s.restartPending) ctx.fx.push({ type: "clear-timer", key: restartTimer(slot) });
  s.restartPending = [];
  delete s.reload;
  const n = s.workers.length;
  log(ctx, "info", `shutting down (${reason}): stopping ${n} worker${n === 1 ? "" : "s"}`);
  for (const w of s.workers) drainWorker(ctx, w, "shutdown");
  exitWhenEmpty(ctx);
}

function quickStop(ctx: Ctx, reason: string): void {
  const { s } = ctx;
  s.phase = "stopping";
  delete s.pendingDrain;
  log(ctx, "warn", `stopping now (${reason}): killing ${s.workers.length} worker(s)`);
  for (const w of s.workers) {
    w.phase = "draining";
    w.stopReason ??= "quick shutdown";
    ctx.fx.push({ type: "kill", id: w.id, signal: "SIGKILL" });
  }
  exitWhenEmpty(ctx);
}

function exitWhenEmpty(ctx: Ctx): void {
  if (ctx.s.workers.length > 0) return;
  ctx.fx.push({ type: "exit", code: ctx.s.exitCode });
}
