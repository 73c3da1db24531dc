// Deaths under load are not a crash loop: an early death is a worker that never got to serve.
import { describe, expect, test } from "bun:test";
import { fixture, runToExit, startSupervisor, steadyLoad } from "./helpers.ts";

describe("deaths under load", () => {
  test("1 request in 50 exits the worker: under steady load ≥ 95% succeed and the supervisor stays up", async () => {
    await using sup = startSupervisor([
      "run",
      fixture("crash-under-load-app.ts"),
      "-w",
      "2",
      "--max-restarts",
      "3",
    ]);
    await sup.waitForOutput(/ready: 2 workers listening/, 20_000);
    const { ok, failed } = await steadyLoad(sup.port, 4, 10, 10, 20_000);
    const deaths = sup.output().match(/died: exit code 1/g)?.length ?? 0;
    // Before: each replacement that served and died within 1 s of ready was an "early death": the
    // slots backed off, and --max-restarts 3 ended the supervisor with exit 4 within seconds (5.8%).
    expect(deaths).toBeGreaterThan(10);
    expect(sup.output()).not.toMatch(/giving up/);
    expect(sup.proc.exitCode).toBeNull();
    expect(ok / (ok + failed)).toBeGreaterThanOrEqual(0.95);
    process.kill(sup.pid, "SIGTERM");
    expect(await sup.exited).toBe(0);
  });

  test("a worker that dies right after ready, every time, still backs off and ends in exit 4", async () => {
    const { code, stderr } = await runToExit(
      ["run", fixture("crash-app.ts"), "-w", "2", "--max-restarts", "3"],
      {
        env: { CRASH_AFTER_MS: "20" },
      },
    );
    expect(code).toBe(4);
    expect(stderr).toMatch(/restarting in \d+ ms \(2 early deaths in a row\)/);
    expect(stderr).toMatch(/4 early deaths in a row; giving up \(--max-restarts 3\)/);
  });
});
