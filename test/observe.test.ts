// Seeing and steering a running supervisor (issue 5): control commands against a live supervisor,
// Prometheus metrics, health and readiness, JSON logs.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseBeat } from "../src/worker/protocol.ts";
import {
  fixture,
  freePort,
  get,
  isAlive,
  ROOT,
  runToExit,
  shellQuote,
  startSupervisor,
  waitFor,
} from "./helpers.ts";

const READY = /ready: \d+ workers? listening/;

/** A supervisor to talk to: its port, and its runtime directory, where its control socket is. */
type Target = { port: number; runtimeDir?: string };

/** `supervisor <args> -p <port>` to completion, in the target's runtime directory. */
const control = (target: Target, ...args: string[]) =>
  runToExit(
    [...args, "-p", String(target.port)],
    target.runtimeDir ? { env: { XDG_RUNTIME_DIR: target.runtimeDir } } : {},
  );

async function status(target: Target) {
  const { code, stdout, stderr } = await control(target, "status", "--json");
  if (code !== 0) throw new Error(`status failed (${code}): ${stderr}`);
  return JSON.parse(stdout) as {
    workersConfigured: number;
    workersReady: number;
    restarts: Record<string, number>;
    workers: {
      slot: number;
      pid: number;
      state: string;
      restarts: number;
      requests: number;
      rssBytes: number | null;
    }[];
  };
}

describe("control commands against a live supervisor", () => {
  test("status shows three ready workers with real pids, then the restart of a killed one", async () => {
    await using sup = startSupervisor(["run", fixture("pid-app.ts"), "-w", "3"]);
    await sup.waitForOutput(READY);
    const table = await control(sup, "status");
    expect(table.code).toBe(0);
    for (const pid of sup.workers()) expect(table.stdout).toContain(String(pid));
    const s = await status(sup);
    expect(s.workersReady).toBe(3);
    expect(s.workers.map((w) => w.pid).sort()).toEqual(sup.workers().sort());
    expect(s.workers.every((w) => w.state === "ready")).toBe(true);
    const victim = s.workers[1] as { slot: number; pid: number };
    process.kill(victim.pid, "SIGKILL");
    const after = await waitFor(async () => {
      const now = await status(sup);
      return now.workersReady === 3 && !now.workers.some((w) => w.pid === victim.pid) ? now : undefined;
    }, "the restart to show in status");
    expect(after.restarts.crash).toBe(1);
    expect(after.workers.find((w) => w.slot === victim.slot)?.restarts).toBe(1);
  });

  test("status counts the requests in a worker's last beat at once, not at the supervisor's next check", async () => {
    // At the default --timeout 30 a worker beats every 5 s, and the supervisor itself reads the beat
    // files only when one could be past --timeout, every 25-30 s: a status request reads them.
    await using sup = startSupervisor(["run", fixture("pid-app.ts"), "-w", "1"]);
    await sup.waitForOutput(READY);
    for (let i = 0; i < 3; i++) expect((await get(sup.port)).status).toBe(200);
    const beatFile = () => {
      const dir = readdirSync("/dev/shm").find((name) => name.startsWith(`supervisor-${sup.pid}-`));
      return dir ? join("/dev/shm", dir, "worker-1.beat") : undefined;
    };
    await waitFor(
      () => {
        const file = beatFile();
        return file !== undefined && (parseBeat(readFileSync(file, "utf8"))?.requests ?? 0) >= 3;
      },
      "a beat counting the 3 requests",
      10_000,
    );
    expect((await status(sup)).workers.map((w) => w.requests)).toEqual([3]);
  });

  test("scale 4 then reload: visible in status and in /metrics", async () => {
    const admin = freePort();
    await using sup = startSupervisor(["run", fixture("pid-app.ts"), "-w", "2", "--admin", String(admin)]);
    await sup.waitForOutput(READY);
    const scaled = await control(sup, "scale", "4");
    expect(scaled.code).toBe(0);
    expect((await status(sup)).workersReady).toBe(4);
    expect(sup.workers()).toHaveLength(4);
    const before = (await status(sup)).workers.map((w) => w.pid);
    const reloaded = await control(sup, "reload");
    expect(reloaded.code).toBe(0);
    expect(reloaded.stdout + reloaded.stderr).toMatch(/reload finished: 4 workers replaced/);
    const after = await status(sup);
    expect(after.workers.filter((w) => w.state === "ready").every((w) => !before.includes(w.pid))).toBe(true);
    expect(after.restarts.reload).toBe(4);
    const metrics = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
    expect(metrics).toMatch(/^supervisor_workers_configured 4$/m);
    expect(metrics).toMatch(/^supervisor_worker_restarts_total\{reason="reload"\} 4$/m);
    const down = await control(sup, "scale", "-1");
    expect(down.code).toBe(0);
    expect((await status(sup)).workersConfigured).toBe(3);
  });

  test("stop answers when done and the supervisor exits 0", async () => {
    await using sup = startSupervisor(["run", fixture("pid-app.ts"), "-w", "2"]);
    await sup.waitForOutput(READY);
    const stopped = await control(sup, "stop");
    expect(stopped.code).toBe(0);
    expect(await sup.exited).toBe(0);
    expect(isAlive(sup.pid)).toBe(false);
  });

  test("with no supervisor on that port: one clear line, exit 2", async () => {
    const { code, stderr } = await control({ port: freePort() }, "status");
    expect(code).toBe(2);
    expect(stderr.trim().split("\n")).toHaveLength(1);
  });
});

describe("health and readiness (--admin)", () => {
  test("/readyz is 503 before the workers are ready and during shutdown, 200 in between", async () => {
    const admin = freePort();
    await using sup = startSupervisor(
      [
        "run",
        fixture("slow-boot-app.ts"),
        "-w",
        "2",
        "--admin",
        `127.0.0.1:${admin}`,
        "--shutdown-delay",
        "1",
      ],
      { env: { BOOT_MS: "1000" } },
    );
    const readyz = async () => (await fetch(`http://127.0.0.1:${admin}/readyz`)).status;
    expect(await waitFor(() => readyz().catch(() => 0), "the admin endpoint")).toBe(503);
    expect((await fetch(`http://127.0.0.1:${admin}/healthz`)).status).toBe(200);
    await sup.waitForOutput(READY);
    expect(await readyz()).toBe(200);
    process.kill(sup.pid, "SIGTERM");
    await sup.waitForOutput(/--shutdown-delay/);
    expect(await readyz()).toBe(503);
    expect((await get(sup.port)).status).toBe(200); // still serving during the delay
    expect(await sup.exited).toBe(0);
  });
});

describe("logs", () => {
  test("--log-format json: every line the supervisor prints parses as JSON", async () => {
    await using sup = startSupervisor(["run", fixture("pid-app.ts"), "-w", "2", "--log-format", "json"]);
    await sup.waitForOutput(/"msg":"ready: 2 workers/);
    process.kill(sup.workers()[0] as number, "SIGKILL");
    await sup.waitForOutput(/died: signal SIGKILL/);
    process.kill(sup.pid, "SIGTERM");
    expect(await sup.exited).toBe(0);
    const lines = sup.output().trim().split("\n");
    expect(lines.length).toBeGreaterThan(5);
    for (const line of lines) {
      const entry = JSON.parse(line);
      expect(typeof entry.time).toBe("string");
      expect(["info", "warn", "error", "debug"]).toContain(entry.level);
      expect(typeof entry.msg).toBe("string");
    }
  });

  // The supervisor tells a terminal from a pipe without process.stdout (src/runtime/log.ts): this is
  // what a user sees either way. `script` gives the run a terminal; throw-app.ts ends it at once (exit 3).
  test.skipIf(Bun.which("script") === null)(
    "on a terminal: local time and the level in colour, none under NO_COLOR; on a pipe: ISO time",
    async () => {
      const runtimeDir = mkdtempSync(join(tmpdir(), "sv-runtime-"));
      const onTerminal = async (env: Record<string, string>) => {
        const run = [process.execPath, join(ROOT, "src", "cli.ts"), "run", fixture("throw-app.ts")]
          .map(shellQuote)
          .join(" ");
        const proc = Bun.spawn(["script", "-qec", `${run} -w 1 -p ${freePort()}`, "/dev/null"], {
          stdin: "ignore",
          stdout: "pipe",
          stderr: "pipe",
          env: { ...process.env, XDG_RUNTIME_DIR: runtimeDir, ...env },
        });
        // ESC spelled out, so the patterns below can name the colour codes.
        const text = (await new Response(proc.stdout).text()).replaceAll("\x1b", "ESC");
        expect(await proc.exited).toBe(3);
        return text;
      };
      try {
        const coloured = await onTerminal({});
        expect(coloured).toMatch(/^\d\d:\d\d:\d\d \[supervisor\] ESC\[36minfoESC\[39m starting 1 worker/m);
        expect(coloured).toMatch(
          /^\d\d:\d\d:\d\d \[supervisor\] ESC\[31merrorESC\[39m worker failed to boot/m,
        );
        expect(coloured).not.toMatch(/ESC\[31m\d\d:\d\d/); // no whole line painted red
        const plain = await onTerminal({ NO_COLOR: "1" });
        expect(plain).toMatch(/^\d\d:\d\d:\d\d \[supervisor\] info starting 1 worker/m);
        expect(plain).not.toContain("ESC[");
      } finally {
        rmSync(runtimeDir, { recursive: true, force: true });
      }
      const piped = await runToExit(["run", fixture("throw-app.ts"), "-w", "1"]);
      expect(piped.code).toBe(3);
      expect(piped.stdout).toMatch(
        /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[supervisor\] info starting 1 worker/m,
      );
      expect(piped.stderr).toMatch(/Z \[supervisor\] error worker failed to boot/);
      expect(piped.stdout + piped.stderr).not.toContain("\x1b[");
    },
  );

  test("--log-level warn keeps info lines out", async () => {
    await using sup = startSupervisor(["run", fixture("pid-app.ts"), "-w", "1", "--log-level", "warn"]);
    await waitFor(async () => (await get(sup.port)).status === 200, "a response");
    expect(sup.output()).not.toMatch(/ready:/);
  });
});
