// One supervisor per (host, port) (issue 11): two started at the same moment with different control
// paths and runtime directories must not both run and split the port's traffic.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { claimPort } from "../src/os/port-claim.ts";
import { fixture, freePort, get, isAlive, startSupervisor, waitFor } from "./helpers.ts";

const READY = /ready: \d+ workers? listening/;
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const OWNED = /port (\d+) on 0\.0\.0\.0 belongs to another supervisor \(pid (\d+)\)/;

describe.skipIf(process.platform !== "linux")("port ownership", () => {
  test("claim, a second claim refused with the owner's pid, release, claim again", async () => {
    const port = freePort();
    const first = await claimPort("127.0.0.1", port);
    const second = claimPort("127.0.0.1", port);
    expect(second).rejects.toThrow(
      `port ${port} on 127.0.0.1 belongs to another supervisor (pid ${process.pid}); stop it first, or pick another port`,
    );
    await second.catch(() => {});
    // Another host on the same port is another address: not refused.
    const other = await claimPort("127.0.0.2", port);
    other.release();
    first.release();
    (await claimPort("127.0.0.1", port)).release();
  });

  test("two supervisors started at once on one port, other control paths and runtime dirs: exactly one runs (5 tries)", async () => {
    for (let i = 0; i < 5; i++) {
      const port = freePort();
      const start = () => {
        const dir = mkdtempSync(join(tmpdir(), "sv-claim-"));
        dirs.push(dir);
        return startSupervisor(["run", fixture("pid-app.ts"), "-w", "2", "--control", join(dir, "c.sock")], {
          port,
        });
      };
      // Both spawned before either can have bound anything.
      await using a = start();
      await using b = start();
      const [loser, winner] = await Promise.race([
        a.exited.then(() => [a, b] as const),
        b.exited.then(() => [b, a] as const),
        waitFor(() => false, "one of the two to exit (both run?)", 15_000).then(() => {
          throw new Error("unreachable");
        }),
      ]);
      expect(await loser.exited).toBe(3);
      const match = OWNED.exec(loser.stderr());
      expect(loser.stderr().trim().split("\n")).toHaveLength(1);
      expect(match?.[1]).toBe(String(port));
      expect(match?.[2]).toBe(String(winner.pid));
      await winner.waitForOutput(READY);
      expect(isAlive(winner.pid)).toBe(true);
      expect((await get(port)).status).toBe(200);
    }
  });

  test("released by the kernel when the owner is SIGKILLed: the next supervisor starts", async () => {
    const port = freePort();
    await using first = startSupervisor(["run", fixture("pid-app.ts"), "-w", "1"], { port });
    await first.waitForOutput(READY);
    const workers = first.workers();
    process.kill(first.pid, "SIGKILL");
    await first.exited;
    // Its workers notice their parent is gone and exit; then the port itself is free too.
    await waitFor(() => workers.every((pid) => !isAlive(pid)), "the orphaned workers to exit");
    await using second = startSupervisor(["run", fixture("pid-app.ts"), "-w", "1"], { port });
    await second.waitForOutput(READY);
  });
});
