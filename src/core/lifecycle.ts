// The decision core: which worker to start, stop, kill or restart, and when to give up.
// `decide(state, event, now)` is pure: it returns the next state and the effects for the shell to
// perform (src/runtime/loop.ts). Everything is "reconcile toward the target" (Gunicorn's manage_workers):
// a crash, TTIN/TTOU, a reload and a recycled worker all end in `reconcile`.

import { ExitCode } from "./exit-codes.ts";
import { describeExit, formatDuration } from "./format.ts";
import {
  heartbeatInterval,
  hungAfterMs,
  KILL_MARGIN_MS,
  MEMORY_SAMPLE_MIN_MS,
  MEMORY_SAMPLES_OVER,
  MIN_UPTIME_MS,
  memorySampleDelay,
  restartBackoff,
} from "./timings.ts";
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
import { RESTART_REASON_OF, RESTART_REASONS } from "./types.ts";

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
    upgradeSeq: 0,
  };
}

/** Zero replacements for every reason (a fresh supervisor, or one not started yet); fromEntries
 * forgets the keys, the list gives them all. */
export const noRestarts = (): Record<RestartReason, number> =>
  Object.fromEntries(RESTART_REASONS.map((reason) => [reason, 0])) as Record<RestartReason, number>;

/** The most workers one supervisor runs (flags, config file, TTIN and `supervisor scale` alike). */
export const MAX_WORKERS = 1024;

/** Why a `supervisor scale` to `target` is refused now, if it is. */
export function scaleRefusal(s: State, target: number): string | undefined {
  if (s.phase !== "running") return `cannot scale while the supervisor is ${s.phase}`;
  if (target < 1) return `cannot scale to ${target}: never below 1 worker`;
  if (target > MAX_WORKERS) return `cannot scale to ${target}: at most ${MAX_WORKERS} workers`;
  return undefined;
}

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

/** Running with exactly the wanted workers, all ready, nothing being replaced: where a supervisor
 * rests between events (start.ts then gives back the code it ran to get there, src/os/code-pages.ts). */
export const isSettled = (s: State) =>
  s.phase === "running" &&
  !s.reload &&
  !s.upgrade &&
  s.restartPending.length === 0 &&
  s.workers.length === s.target &&
  s.workers.every((w) => w.phase === "ready");

// --- internal ---

interface Ctx {
  s: State;
  fx: Effect[];
  now: number;
}

const bootTimer = (id: number) => `boot:${id}`;
const killTimer = (id: number) => `kill:${id}`;
const restartTimer = (slot: number) => `restart:${slot}`;
const retireTimer = (id: number) => `retire:${id}`;
const MEMORY_TIMER = "memory-sample";
const HEARTBEAT_TIMER = "heartbeat-sample";

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
      return withWorker(ctx, ev.id, (w) => workerReady(ctx, w, ev.startupMs));
    case "serving":
      return withWorker(ctx, ev.id, (w) => {
        w.servedAt ??= ctx.now;
      });
    case "boot-error":
      return withWorker(ctx, ev.id, (w) => {
        w.bootError = ev.message;
      });
    case "heartbeat":
      return withWorker(ctx, ev.id, (w) => heartbeat(ctx, w, ev.requests, ctx.now));
    case "heartbeats":
      return heartbeatsRead(ctx, ev.beats);
    case "sample-heartbeats":
      return sampleHeartbeats(ctx);
    case "memory":
      return memorySampled(ctx, ev.samples);
    case "exit":
      return withWorker(ctx, ev.id, (w) => workerGone(ctx, w, ev.code, ev.signal));
    case "timer":
      return timerFired(ctx, ev.key);
    case "signal":
      return signalReceived(ctx, ev.signal);
    case "retire":
      return withWorker(ctx, ev.id, (w) => {
        // Remembered until the worker is gone: a failed replacement is retried (retire timer).
        w.retireAsked = ev.reason;
        if (ev.requests !== undefined) w.requests = Math.max(w.requests, ev.requests);
        retire(ctx, w, ev.reason);
      });
    case "scale":
      return scaleTo(ctx, ev.workers);
    case "stop":
      return shutdown(ctx, "stop requested");
    case "configure":
      return configure(ctx, ev.config);
    case "forward":
      for (const w of ctx.s.workers) ctx.fx.push({ type: "kill", id: w.id, signal: ev.signal });
      return;
    case "upgrade":
      return startUpgrade(ctx);
    case "successor-started":
      if (ctx.s.upgrade && ctx.s.upgrade.pid === undefined) ctx.s.upgrade.pid = ev.pid;
      return;
    case "successor-exit":
      return successorExited(ctx, ev.pid, ev.how);
    case "successor-ready":
      return successorReady(ctx, ev.pid, ev.version);
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
  // Rolling replacement (reload, recycling): one fresh worker at a time, old one drained once it is
  // ready; the oldest code first, so a reload asked during one finishes the first round, then re-runs.
  if (s.phase !== "running") return;
  if (s.workers.some((w) => w.replacementOf !== undefined)) return;
  const [old] = readyWorkers(s)
    .filter((w) => w.retiring && w.slot < s.target)
    .sort((a, b) => a.generation - b.generation || a.slot - b.slot);
  if (old) spawnWorker(ctx, old.slot, old.id);
}

function spawnWorker(ctx: Ctx, slot: number, replacementOf?: number): void {
  const { s } = ctx;
  const w: WorkerRecord = {
    id: s.nextId++,
    slot,
    phase: "starting",
    startedAt: ctx.now,
    generation: s.reloadSeq,
    heartbeatMs: heartbeatInterval(s.config.timeoutMs),
    requests: 0,
    overMemory: 0,
  };
  if (replacementOf !== undefined) w.replacementOf = replacementOf;
  s.workers.push(w);
  ctx.fx.push({ type: "spawn", id: w.id, slot, heartbeatMs: w.heartbeatMs });
  ctx.fx.push({ type: "set-timer", key: bootTimer(w.id), ms: s.config.bootTimeoutMs });
}

/** Ask a worker to finish its requests and exit; SIGKILL it if it is still there after the grace. */
function drainWorker(ctx: Ctx, w: WorkerRecord, reason: string): void {
  if (w.phase === "draining") return;
  w.phase = "draining";
  w.stopReason = reason;
  ctx.fx.push({ type: "clear-timer", key: bootTimer(w.id) });
  ctx.fx.push({ type: "kill", id: w.id, signal: "SIGTERM" });
  ctx.fx.push({
    type: "set-timer",
    key: killTimer(w.id),
    ms: ctx.s.config.gracefulTimeoutMs + KILL_MARGIN_MS,
  });
}

function workerReady(ctx: Ctx, w: WorkerRecord, startupMs: number | undefined): void {
  const { s } = ctx;
  if (w.phase !== "starting") return;
  w.phase = "ready";
  w.readyAt = ctx.now;
  w.beatAt = ctx.now;
  ctx.fx.push({ type: "clear-timer", key: bootTimer(w.id) });
  armHeartbeatCheck(ctx);
  armMemorySampling(ctx, MEMORY_SAMPLE_MIN_MS); // a new worker's first sample comes soon
  // One line per worker, at boot and after: the app's own start-up work (its import), as it measured it.
  log(ctx, "info", `${label(w)}: app started in ${formatDuration(startupMs ?? ctx.now - w.startedAt)}`);
  if (w.replacementOf !== undefined) {
    const old = s.workers.find((x) => x.id === w.replacementOf);
    delete w.replacementOf;
    if (old) {
      countRestart(ctx, old.slot, RESTART_REASON_OF[old.retiring ?? "reload"]);
      if (old.retiring === "reload" && s.reload) s.reload.replaced++;
      drainWorker(ctx, old, old.retiring ?? "replaced");
    }
  }
  // Started before the latest reload was asked (a replacement already under way, say): its turn comes.
  if (s.reload && w.generation < s.reloadSeq) w.retiring ??= "reload";
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
    ctx.fx.push({ type: "hook", name: "onReady" });
  }
  reconcile(ctx);
  finishReloadIfDone(ctx);
}

/** The worker's event loop ran at `at` (ms, the supervisor's clock); it reports its request count,
 * and a retirement it asked for that is not under way yet (its replacement failed) is tried again. */
function heartbeat(ctx: Ctx, w: WorkerRecord, requests: number, at: number): void {
  w.requests = requests;
  if (requests > 0) w.servedAt ??= ctx.now;
  w.beatAt = Math.max(w.beatAt ?? 0, Math.min(at, ctx.now));
  if (w.retireAsked && !w.retiring) retire(ctx, w, w.retireAsked);
}

// --- hung workers (--timeout) ---
// A beat in shared memory wakes nobody (os/beat-files.ts). The supervisor reads the beat files when
// the first worker could be past --timeout (its last beat + hungAfterMs), not on a fixed tick: an idle
// supervisor wakes about once per --timeout (every 25-30 s at the default 30 s; a 5 s tick woke it six
// times as often), and a hung worker is killed --timeout after its last beat, give or take the
// timer's lateness (the tick added up to one more interval). With --timeout 0 nothing is read on a
// timer; a status or metrics request reads the counts ("sample-heartbeats").

/** Workers --timeout watches: ready, and not already killed as hung (its exit is on its way); none
 * with --timeout off or while stopping. */
const watchedWorkers = (s: State) =>
  s.config.timeoutMs > 0 && s.phase !== "stopping"
    ? readyWorkers(s).filter((w) => w.killedFor === undefined)
    : [];
const hungDeadline = (s: State, w: WorkerRecord) =>
  (w.beatAt ?? w.readyAt ?? w.startedAt) + hungAfterMs(s.config.timeoutMs, w.heartbeatMs);

function armHeartbeatCheck(ctx: Ctx): void {
  const { s } = ctx;
  const watched = watchedWorkers(s);
  if (watched.length === 0) {
    ctx.fx.push({ type: "clear-timer", key: HEARTBEAT_TIMER });
    return;
  }
  const due = Math.min(...watched.map((w) => hungDeadline(s, w)));
  ctx.fx.push({ type: "set-timer", key: HEARTBEAT_TIMER, ms: Math.max(0, Math.ceil(due - ctx.now)) });
}

/** The timer, or a status request: ask the shell for the ready workers' beats ("heartbeats"). */
function sampleHeartbeats(ctx: Ctx): void {
  if (ctx.s.phase === "stopping") return;
  const ids = readyWorkers(ctx.s).map((w) => w.id);
  if (ids.length > 0) ctx.fx.push({ type: "read-heartbeats", ids });
  else armHeartbeatCheck(ctx);
}

/** The beats read: every watched worker silent for hungAfterMs is killed; then the next check. */
function heartbeatsRead(ctx: Ctx, beats: { id: number; requests: number; at: number }[]): void {
  const { s } = ctx;
  for (const b of beats) withWorker(ctx, b.id, (w) => heartbeat(ctx, w, b.requests, b.at));
  for (const w of watchedWorkers(s)) if (ctx.now >= hungDeadline(s, w)) killHung(ctx, w);
  armHeartbeatCheck(ctx);
}

function killHung(ctx: Ctx, w: WorkerRecord): void {
  w.killedFor = "timeout";
  w.killReason = "--timeout";
  const silent = hungAfterMs(ctx.s.config.timeoutMs, w.heartbeatMs);
  log(ctx, "error", `${label(w)} sent no heartbeat for ${formatDuration(silent)} (hung?); killing it`);
  ctx.fx.push({ type: "kill", id: w.id, signal: "SIGKILL" });
}

/** Shutting down, however it is asked for: no upgrade, no pending restart, no reload, and no more
 * samples of memory or heartbeats. */
function cancelSchedules(ctx: Ctx): void {
  const { s } = ctx;
  abandonUpgrade(ctx);
  for (const slot of s.restartPending) ctx.fx.push({ type: "clear-timer", key: restartTimer(slot) });
  s.restartPending = [];
  delete s.reload;
  ctx.fx.push({ type: "clear-timer", key: MEMORY_TIMER });
  ctx.fx.push({ type: "clear-timer", key: HEARTBEAT_TIMER });
}

/** --max-memory: sample every ready worker's RSS (the shell reads /proc) while the limit is set, next
 * after `ms` (by default: when the last samples say a fast leak could reach the limit). */
function armMemorySampling(ctx: Ctx, ms?: number): void {
  const { s } = ctx;
  if (s.config.maxMemoryBytes <= 0 || s.phase === "stopping") return;
  const delay =
    ms ??
    memorySampleDelay(
      s.config.maxMemoryBytes,
      readyWorkers(s).map((w) => w.rssBytes),
    );
  ctx.fx.push({ type: "set-timer", key: MEMORY_TIMER, ms: delay });
}

/** The timer fired: ask the shell for the samples; the next timer is armed when they come back. */
function sampleMemory(ctx: Ctx): void {
  const workers = readyWorkers(ctx.s).flatMap((w) => (w.pid === undefined ? [] : [{ id: w.id, pid: w.pid }]));
  if (workers.length > 0) ctx.fx.push({ type: "sample-memory", workers });
  else armMemorySampling(ctx);
}

function memorySampled(ctx: Ctx, samples: { id: number; rssBytes: number | undefined }[]): void {
  const limit = ctx.s.config.maxMemoryBytes;
  for (const { id, rssBytes } of samples) {
    const w = ctx.s.workers.find((x) => x.id === id);
    if (w?.phase !== "ready" || rssBytes === undefined) continue;
    w.rssBytes = rssBytes;
    if (limit <= 0) continue;
    w.overMemory = rssBytes > limit ? w.overMemory + 1 : 0;
    if (w.overMemory >= MEMORY_SAMPLES_OVER) {
      w.overMemory = 0;
      retire(ctx, w, "max-memory");
    }
  }
  armMemorySampling(ctx);
}

/** A re-read config file: new timeouts and limits apply from now on, to the workers kept too (their
 * heartbeat deadline, memory sampling); a changed worker count is a "scale" of its own. */
function configure(ctx: Ctx, next: Partial<Omit<Config, "address">>): void {
  const { s } = ctx;
  const before = { ...s.config };
  Object.assign(s.config, next);
  if (s.config.timeoutMs !== before.timeoutMs) armHeartbeatCheck(ctx);
  if (s.config.maxMemoryBytes > 0 !== before.maxMemoryBytes > 0) {
    for (const w of s.workers) w.overMemory = 0;
    if (s.config.maxMemoryBytes > 0) armMemorySampling(ctx, MEMORY_SAMPLE_MIN_MS);
    else ctx.fx.push({ type: "clear-timer", key: MEMORY_TIMER });
  }
}

function countRestart(ctx: Ctx, slot: number, reason: RestartReason): void {
  ctx.s.restarts[reason]++;
  ctx.s.slotRestarts[slot] = (ctx.s.slotRestarts[slot] ?? 0) + 1;
}

/** Done when no active worker runs code older than the latest reload asked for: the answer then covers
 * every request so far. Before that, a request every active worker was started after is answered
 * (`lastReload.seq` covers it and every earlier one) while a later one goes on. */
function finishReloadIfDone(ctx: Ctx): void {
  const { s } = ctx;
  if (!s.reload) return;
  const n = s.reload.replaced;
  const replaced = `${n} worker${n === 1 ? "" : "s"} replaced in ${formatDuration(ctx.now - s.reload.startedAt)}`;
  const oldest = Math.min(s.reloadSeq, ...activeWorkers(s).map((w) => w.generation));
  if (oldest < s.reloadSeq) {
    if (oldest > (s.lastReload?.seq ?? 0)) {
      const message = `reload finished: ${replaced}; a reload asked since is still under way`;
      s.lastReload = { seq: oldest, ok: true, message };
    }
    return;
  }
  const message = `reload finished: ${replaced}`;
  log(ctx, "info", message);
  s.lastReload = { seq: s.reloadSeq, ok: true, message };
  delete s.reload;
}

/** A worker process is gone: expected (drained, stopping) or not (crash, killed, failed to boot). */
function workerGone(ctx: Ctx, w: WorkerRecord, code: number | null, signal: string | null): void {
  const { s } = ctx;
  s.workers = s.workers.filter((x) => x.id !== w.id);
  for (const key of [bootTimer(w.id), killTimer(w.id), retireTimer(w.id)])
    ctx.fx.push({ type: "clear-timer", key });
  const how = describeExit(code, signal, w.killReason);
  const uptime = formatDuration(ctx.now - w.startedAt);

  if (s.phase === "stopping" || w.phase === "draining") {
    const why = w.stopReason ? ` (${w.stopReason})` : "";
    // A worker still starting Bun when TERM came has no handler yet and dies of it: that is a clean stop too.
    const clean = (code === 0 && !signal) || signal === "SIGTERM";
    log(ctx, clean ? "info" : "warn", `${label(w)} stopped${why}: ${how} after ${uptime}`);
    if (s.phase === "stopping") return exitWhenEmpty(ctx);
    reconcile(ctx);
    return finishReloadIfDone(ctx);
  }
  // The config file's hook hears of every unexpected exit of a worker process (not of a failed spawn).
  if (w.pid !== undefined) {
    ctx.fx.push({ type: "hook", name: "onWorkerExit", exit: { slot: w.slot, pid: w.pid, code, signal } });
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
  // Early means it never got to serve: not ready, or ready without a request for less than MIN_UPTIME_MS.
  // A worker that served and then died (a request that crashes it, under load) is restarted at once.
  const early = w.readyAt === undefined || (w.servedAt === undefined && ctx.now - w.readyAt < MIN_UPTIME_MS);
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
  finishReloadIfDone(ctx);
}

/** A fresh worker meant to take over from a retiring one never got ready: keep the old one serving. */
function replacementFailed(ctx: Ctx, w: WorkerRecord, how: string): void {
  const { s } = ctx;
  const why = w.bootError ?? `the new worker exited with ${how} before it was ready`;
  const old = s.workers.find((x) => x.id === w.replacementOf);
  const reason = old?.retiring ?? "reload";
  // Give up this round for every worker retiring for the same reason: a broken deploy stops here.
  const kept = s.workers.filter((x) => x.retiring === reason && x.phase !== "draining");
  for (const x of kept) {
    delete x.retiring;
    // A recycle asked again waits longer after each failed try: the worker's own ask is retried on a
    // timer (it is sent once), --max-memory's at its next sample over the limit.
    x.replaceFailures = (x.replaceFailures ?? 0) + 1;
    const wait = Math.max(MIN_UPTIME_MS, restartBackoff(x.replaceFailures + 1));
    x.replaceNotBefore = ctx.now + wait;
    if (x.retireAsked) ctx.fx.push({ type: "set-timer", key: retireTimer(x.id), ms: wait });
  }
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
  if (w.replaceNotBefore !== undefined && ctx.now < w.replaceNotBefore) return;
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
  if (key === UPGRADE_TIMER) {
    const u = s.upgrade;
    if (!u || u.handedOver) return;
    if (u.pid === undefined) return successorExited(ctx, undefined, "it did not start in time");
    u.timedOut = true;
    u.stopAsked = true;
    log(ctx, "error", `upgrade: the new supervisor (pid ${u.pid}) is not ready in time; stopping it`);
    ctx.fx.push({ type: "stop-successor", pid: u.pid });
    return;
  }
  if (kind === HEARTBEAT_TIMER) return sampleHeartbeats(ctx);
  if (kind === MEMORY_TIMER) {
    if (s.config.maxMemoryBytes > 0 && s.phase !== "stopping") sampleMemory(ctx);
    return;
  }
  const w = s.workers.find((x) => x.id === num);
  if (!w) return;
  if (kind === "boot" && w.phase === "starting") {
    w.bootError ??= `not ready within --boot-timeout ${s.config.bootTimeoutMs / 1000}s`;
    w.killReason = "--boot-timeout";
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
    w.killReason = "--graceful-timeout";
    ctx.fx.push({ type: "kill", id: w.id, signal: "SIGKILL" });
  } else if (kind === "retire" && w.retireAsked && !w.retiring) {
    retire(ctx, w, w.retireAsked);
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
      for (const w of s.workers) ctx.fx.push({ type: "kill", id: w.id, signal });
      return;
    case "SIGUSR2":
      return startUpgrade(ctx);
  }
}

// --- upgrading the supervisor itself (USR2, `supervisor upgrade`) ---
// The new supervisor starts its own workers on the same port (SO_REUSEPORT) while we serve; once all
// are ready it tells us, and we drain ours exactly as a shutdown does, then exit 0. Anything else (it
// cannot start, exits, is not ready in time) leaves us serving, as if nothing was asked.

/** Why an upgrade is refused now, if it is. */
export function upgradeRefusal(s: State): string | undefined {
  if (s.config.pid1) {
    return "as PID 1 (a container) the supervisor cannot be replaced by a new process; upgrade the container image instead";
  }
  if (s.config.systemdWithoutNotify) {
    return "systemd would take the old supervisor's exit for the end of the service and stop the new one; add NotifyAccess=main (or Type=notify) to the unit so that it can follow the new main pid";
  }
  if (s.upgrade) {
    const who = s.upgrade.pid === undefined ? "" : ` (new supervisor pid ${s.upgrade.pid})`;
    return `an upgrade is already under way${who}`;
  }
  if (s.phase !== "running") return `the supervisor is ${s.phase}`;
  return undefined;
}

/** How long a new supervisor may take from its start to "ready": its own start-up, then its workers'
 * boot (in parallel, within --boot-timeout). */
export const upgradeDeadlineMs = (s: State) => UPGRADE_START_MS + s.config.bootTimeoutMs + KILL_MARGIN_MS;
/** Start-up of the new supervisor process itself (loading, config file, checks) before its workers. */
export const UPGRADE_START_MS = 10_000;
const UPGRADE_TIMER = "upgrade:0";

function startUpgrade(ctx: Ctx): void {
  const { s } = ctx;
  const refusal = upgradeRefusal(s);
  if (refusal) return log(ctx, "warn", `upgrade refused: ${refusal}`);
  s.upgradeSeq++;
  s.upgrade = { seq: s.upgradeSeq, startedAt: ctx.now };
  log(ctx, "info", "upgrading: starting a new supervisor from the binary now at our path");
  ctx.fx.push({ type: "start-successor" });
  ctx.fx.push({ type: "set-timer", key: UPGRADE_TIMER, ms: upgradeDeadlineMs(s) });
}

function successorExited(ctx: Ctx, pid: number | undefined, how: string): void {
  const u = ctx.s.upgrade;
  if (!u || u.handedOver || (pid !== undefined && u.pid !== pid)) return;
  const why = u.timedOut
    ? `the new supervisor (pid ${pid}) was not ready within ${formatDuration(upgradeDeadlineMs(ctx.s))}; stopped it`
    : pid === undefined
      ? `the new supervisor could not be started: ${how}`
      : `the new supervisor (pid ${pid}) exited with ${how} before its workers were ready`;
  const stopping = ctx.s.phase === "stopping";
  // Stopped because we stop (abandonUpgrade): nothing failed, and nothing keeps serving.
  const message = stopping
    ? `upgrade abandoned: the supervisor is stopping, and so did the new one (pid ${pid}, ${how})`
    : `upgrade failed: ${why}; the old supervisor keeps serving`;
  log(ctx, stopping ? "warn" : "error", message);
  ctx.fx.push({ type: "clear-timer", key: UPGRADE_TIMER });
  ctx.s.lastUpgrade = { seq: u.seq, ok: false, message };
  delete ctx.s.upgrade;
}

function successorReady(ctx: Ctx, pid: number, version: string): void {
  const { s } = ctx;
  const u = s.upgrade;
  if (!u || u.pid !== pid || u.handedOver || u.timedOut || s.phase !== "running") {
    return log(ctx, "warn", `ignored a hand-over from pid ${pid}: no upgrade to it is under way`);
  }
  u.handedOver = true;
  const message = `upgrade finished: supervisor pid ${pid} (version ${version}) took over in ${formatDuration(ctx.now - u.startedAt)}`;
  s.lastUpgrade = { seq: u.seq, ok: true, message };
  log(ctx, "info", `upgrade: pid ${pid} (version ${version}) has its workers ready; handing over`);
  ctx.fx.push({ type: "clear-timer", key: UPGRADE_TIMER });
  ctx.fx.push({ type: "hand-over", pid });
  stopAll(ctx, ExitCode.OK, `upgraded: pid ${pid} took over`);
}

/** A stop while a new supervisor is still starting stops it too: it must not outlive the upgrade. */
function abandonUpgrade(ctx: Ctx): void {
  const u = ctx.s.upgrade;
  if (!u || u.handedOver || u.pid === undefined || u.stopAsked) return;
  u.stopAsked = true;
  ctx.fx.push({ type: "stop-successor", pid: u.pid });
}

/** Every worker older than this request is replaced, one at a time. A reload asked during one does not
 * start over: the one under way goes on, then replaces (once) the workers started before this request. */
function startReload(ctx: Ctx): void {
  const { s } = ctx;
  s.reloadSeq++;
  if (s.phase !== "running") {
    const message = `reload ignored: the supervisor is ${s.phase}`;
    log(ctx, "warn", message);
    s.lastReload = { seq: s.reloadSeq, ok: false, message };
    return;
  }
  const beingReplaced = new Set(s.workers.map((w) => w.replacementOf));
  for (const w of readyWorkers(s)) if (!beingReplaced.has(w.id)) w.retiring = "reload";
  const stale = activeWorkers(s).filter((w) => w.generation < s.reloadSeq).length;
  if (s.reload) {
    log(
      ctx,
      "info",
      `reload asked during a reload: it goes on until all ${stale} older workers are replaced`,
    );
  } else {
    s.reload = { startedAt: ctx.now, replaced: 0 };
    log(ctx, "info", `reloading: replacing ${stale} workers one at a time`);
  }
  reconcile(ctx);
  finishReloadIfDone(ctx);
}

function scaleTo(ctx: Ctx, workers: number): void {
  const { s } = ctx;
  if (s.phase === "stopping") return;
  const target = Math.min(MAX_WORKERS, Math.max(1, workers));
  if (target === s.target) {
    const bound = target === 1 ? "never below 1" : `at most ${MAX_WORKERS}`;
    log(ctx, "warn", `scale ignored: already at ${target} worker${target === 1 ? "" : "s"} (${bound})`);
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
  cancelSchedules(ctx);
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
  cancelSchedules(ctx);
  const n = s.workers.length;
  log(ctx, "info", `shutting down (${reason}): stopping ${n} worker${n === 1 ? "" : "s"}`);
  for (const w of s.workers) drainWorker(ctx, w, "shutdown");
  exitWhenEmpty(ctx);
}

function quickStop(ctx: Ctx, reason: string): void {
  const { s } = ctx;
  s.phase = "stopping";
  delete s.pendingDrain;
  cancelSchedules(ctx);
  log(ctx, "warn", `stopping now (${reason}): killing ${s.workers.length} worker(s)`);
  for (const w of s.workers) {
    w.phase = "draining";
    w.stopReason ??= "quick shutdown";
    w.killReason = reason;
    ctx.fx.push({ type: "kill", id: w.id, signal: "SIGKILL" });
  }
  exitWhenEmpty(ctx);
}

function exitWhenEmpty(ctx: Ctx): void {
  if (ctx.s.workers.length > 0) return;
  ctx.fx.push({ type: "exit", code: ctx.s.exitCode });
}
