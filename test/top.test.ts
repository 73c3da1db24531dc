// `supervisor top`: the frame from two snapshots (pure), then as a person uses it — under tmux
// against a live supervisor under load: the view appears, refreshes, shows every worker with its
// req/s and latency, and `q` leaves it.
import { beforeAll, describe, expect, test } from "bun:test";
import { quantile, renderTop } from "../src/control/top-view.ts";
import type { Snapshot } from "../src/control/types.ts";
import { SNAPSHOT } from "./fake-control.ts";
import { BINARY, ensureBinary, fixture, freePort, shellQuote, startSupervisor, waitFor } from "./helpers.ts";

describe("quantile of a histogram", () => {
  const bounds = [0.01, 0.1, 1];
  test.each([
    [[10, 0, 0, 0], 0.5, 0.005],
    [[0, 10, 0, 0], 0.5, 0.055],
    [[5, 5, 0, 0], 0.99, 0.01 + 0.09 * 0.98],
    [[0, 0, 0, 4], 0.5, 1],
  ])("%p q=%p", (buckets, q, expected) => {
    expect(quantile(buckets, bounds, q)).toBeCloseTo(expected, 6);
  });
  test("no requests: no figure", () => {
    expect(quantile([0, 0, 0, 0], bounds, 0.5)).toBeUndefined();
  });
});

describe("renderTop", () => {
  const http = (count: number, buckets: number[]) => ({ inFlight: 0, count, sumSeconds: 0, buckets });
  const at = (requests: number, buckets: number[]): Snapshot => ({
    ...SNAPSHOT,
    http: { ...http(requests, buckets), upperBounds: [0.005, 0.05, 0.5], requests: [] },
    workers: SNAPSHOT.workers.map((w) => (w.pid === 5001 ? { ...w, http: http(requests, buckets) } : w)),
  });

  test("req/s and latency from the difference of two snapshots, a totals line", () => {
    const frame = renderTop(at(100, [100, 0, 0, 0]), at(300, [100, 150, 50, 0]), 2_000);
    const row = frame.split("\n").find((line) => /^0\s+5001/.test(line)) ?? "";
    expect(row).toMatch(/\b100\b/); // 200 requests in 2 s
    expect(row).toContain("35ms"); // p50: rank 100 of 200, two thirds into the 5–50 ms bucket
    expect(row).toContain("482ms"); // p99: rank 198, 48 of 50 into the 50–500 ms bucket
    expect(frame).toMatch(/^total\s+100\b/m);
  });

  test("without --admin: rates from heartbeat counts, no latency, and it says so", () => {
    const plain = { ...SNAPSHOT, http: undefined };
    const later = { ...plain, workers: plain.workers.map((w) => ({ ...w, requests: w.requests + 50 })) };
    const frame = renderTop(plain, later, 1_000);
    expect(frame).toContain("latency needs --admin");
    expect(frame.split("\n").find((line) => /^0\s+5001/.test(line))).toMatch(/\s50\s+-\s+-/);
  });
});

const hasTmux = Bun.which("tmux") !== null;

describe.skipIf(!hasTmux)("under tmux, against a live supervisor under load (skipped without tmux)", () => {
  beforeAll(() => {
    ensureBinary();
  }, 120_000);

  test("the view shows each worker's req/s and latency, refreshes, and q leaves", async () => {
    const admin = freePort();
    await using sup = startSupervisor(
      ["run", fixture("lifespan/bun-app.ts"), "-w", "2", "--admin", String(admin)],
      { binary: true },
    );
    await sup.waitForOutput(/ready: 2 workers listening/);
    const session = `sv-top-${process.pid}-${sup.port}`;
    const tmux = (...args: string[]) => Bun.spawnSync(["tmux", ...args], { stderr: "pipe" });
    const screen = () => tmux("capture-pane", "-p", "-t", session).stdout.toString();
    let loading = true;
    const load = (async () => {
      while (loading) await (await fetch(`http://127.0.0.1:${sup.port}/`)).text();
    })();
    try {
      const env = shellQuote(`XDG_RUNTIME_DIR=${sup.runtimeDir}`);
      tmux(
        "new-session",
        "-d",
        "-s",
        session,
        "-x",
        "120",
        "-y",
        "20",
        `env ${env} ${shellQuote(BINARY)} top -p ${sup.port}`,
      );
      const frame = await waitFor(() => {
        const text = screen();
        return /^total\s+\d+/m.test(text) ? text : undefined;
      }, "a frame with totals");
      for (const pid of sup.workers()) expect(frame).toContain(String(pid));
      expect(frame).toMatch(/REQ\/S\s+P50\s+P99/);
      const up = /up ([\d.]+ \w+)/.exec(frame)?.[1];
      await waitFor(() => /up ([\d.]+ \w+)/.exec(screen())?.[1] !== up, "the view to refresh");
      expect(screen()).toMatch(/^total\s+[1-9]\d*\s+<5ms\s+\S+ms/m); // req/s and latency under the load
      tmux("send-keys", "-t", session, "q");
      await waitFor(() => tmux("has-session", "-t", session).exitCode !== 0, "top to leave on q");
    } finally {
      loading = false;
      await load;
      tmux("kill-session", "-t", session);
    }
  });

  test("--once prints one plain frame", async () => {
    const admin = freePort();
    await using sup = startSupervisor(
      ["run", fixture("lifespan/bun-app.ts"), "-w", "2", "--admin", String(admin)],
      { binary: true },
    );
    await sup.waitForOutput(/ready: 2 workers listening/);
    const once = Bun.spawnSync([BINARY, "top", "--once", "-p", String(sup.port)], {
      env: { ...process.env, XDG_RUNTIME_DIR: sup.runtimeDir },
    });
    expect(once.exitCode).toBe(0);
    const out = once.stdout.toString();
    expect(out).not.toContain("\x1b");
    expect(out).toMatch(/^SLOT\s+PID\s+STATE\s+UPTIME\s+REQ\/S\s+P50\s+P99\s+RSS\s+RESTARTS$/m);
    expect(out).toMatch(/^total\s+/m);
  });
});
