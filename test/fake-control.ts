// A fixed Snapshot and a fake ControlActions that records what it was asked: the control socket,
// admin endpoint and metrics are tested against these, with no supervisor running.

import type { ActionResult, ControlActions, Snapshot } from "../src/control/types.ts";

export const SNAPSHOT: Snapshot = {
  pid: 4242,
  version: "0.1.0",
  phase: "running",
  uptimeMs: 125_500,
  address: "http://0.0.0.0:3000",
  workersConfigured: 3,
  workersReady: 2,
  workers: [
    { slot: 1, pid: 5002, state: "starting", uptimeMs: 300, restarts: 2, rssBytes: null, requests: 0 },
    {
      slot: 0,
      pid: 5001,
      state: "ready",
      uptimeMs: 120_000,
      restarts: 0,
      rssBytes: 52_428_800,
      requests: 1500,
    },
    {
      slot: 2,
      pid: 5003,
      state: "ready",
      uptimeMs: 60_250,
      restarts: 1,
      rssBytes: 41_943_040,
      requests: 700,
    },
    { slot: 3, pid: null, state: "starting", uptimeMs: 0, restarts: 0, rssBytes: null, requests: 0 },
  ],
  restarts: { crash: 2, timeout: 0, memory: 1, "max-requests": 0, reload: 3 },
};

export interface FakeActions extends ControlActions {
  calls: string[];
  /** The snapshot it reports; tests change it. */
  state: Snapshot;
  shuttingDown: boolean;
  isShuttingDown(): boolean;
  /** When set, actions wait for this before answering (to test "answers when done"). */
  gate?: Promise<void>;
}

export function fakeActions(overrides: Partial<Snapshot> = {}): FakeActions {
  const fake: FakeActions = {
    calls: [],
    state: structuredClone({ ...SNAPSHOT, ...overrides }),
    shuttingDown: false,
    isShuttingDown: () => fake.shuttingDown,
    snapshot: () => fake.state,
    async reload(): Promise<ActionResult> {
      fake.calls.push("reload");
      await fake.gate;
      return {
        ok: true,
        message: `reload finished: ${fake.state.workersConfigured} workers replaced in 12 ms`,
      };
    },
    async scale(workers, relative): Promise<ActionResult> {
      fake.calls.push(`scale ${workers} ${relative}`);
      await fake.gate;
      const target = relative ? fake.state.workersConfigured + workers : workers;
      if (target < 1)
        return { ok: false, message: `cannot scale to ${target} workers: at least 1 is needed` };
      fake.state.workersConfigured = target;
      return { ok: true, message: `scaled to ${target} workers` };
    },
    async stop(): Promise<ActionResult> {
      fake.calls.push("stop");
      fake.shuttingDown = true;
      await fake.gate;
      return { ok: true, message: "stopped" };
    },
    async upgrade(): Promise<ActionResult> {
      fake.calls.push("upgrade");
      await fake.gate;
      return { ok: true, message: "upgrade finished" };
    },
    async signal(name): Promise<ActionResult> {
      fake.calls.push(`signal ${name}`);
      return { ok: true, message: `${name} sent` };
    },
    async successorReady(pid, version): Promise<ActionResult> {
      fake.calls.push(`successor ${pid} ${version}`);
      return { ok: true, message: "handed over" };
    },
  };
  return fake;
}
