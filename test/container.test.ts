// The compiled binary in a real container engine: README's Dockerfile built with podman (its base
// images replaced by local stand-ins, since no registry is reachable: see
// test/fixtures/container-scenario.ts), run with the supervisor as ENTRYPOINT and PID 1.
// Needs root and podman (.ci/run installs podman and runc); skipped with the reason elsewhere.

import { describe, expect, test } from "bun:test";
import { ensureBinary, fixture, runScenario } from "./helpers.ts";

const isRoot = process.getuid?.() === 0;
const hasPodman = Bun.spawnSync(["sh", "-c", "command -v podman"]).exitCode === 0;
const podmanWorks =
  isRoot &&
  hasPodman &&
  Bun.spawnSync(["podman", "info"], { stdout: "ignore", stderr: "ignore" }).exitCode === 0;
const canIsolate = isRoot && Bun.spawnSync(["unshare", "--net", "true"]).exitCode === 0;
const skipReason = !hasPodman
  ? "podman is not installed (.ci/run installs it)"
  : !isRoot
    ? "needs root (rootless podman is not set up here)"
    : !podmanWorks
      ? "`podman info` fails (see /etc/containers/containers.conf in docs/DEPLOYMENT.md)"
      : !canIsolate
        ? "cannot make a private network namespace (unshare --net)"
        : "";
if (skipReason) console.warn(`test/container.test.ts skipped: ${skipReason}`);

interface ContainerRun {
  imageBytes: number;
  binaryBytes: number;
  buildMs: number;
  nspid: string;
  workerPids: number;
  orphansRequest: number;
  orphansAdopted: number;
  zombiesAfterOrphans: number;
  reload: { ok: number; failed: number; errors: string[]; newPids: number };
  stop: { ms: number; status: number; exitCode: number };
  cpusLine: string;
  readOnly: { status: number; user: string; controlLine: string };
}

describe.skipIf(Boolean(skipReason))("container (podman, README's Dockerfile)", () => {
  test("PID 1 with 3 workers; orphans reaped; HUP under load 0 failed; stop with a request in flight; --cpus=1; --read-only as non-root", async () => {
    const run = await runScenario<ContainerRun>(fixture("container-scenario.ts"), [ensureBinary()]);
    console.log(`container figures: ${JSON.stringify(run)}`);
    // The binary once, not twice: the image is the binary plus glibc and the app.
    expect(run.imageBytes).toBeLessThan(run.binaryBytes + 16 * 2 ** 20);
    expect(run.nspid).toBe("1");
    expect(run.workerPids).toBe(3);
    expect(run.orphansRequest).toBe(200);
    expect(run.orphansAdopted).toBeGreaterThan(0);
    expect(run.zombiesAfterOrphans).toBe(0);
    expect(run.reload.failed).toBe(0);
    expect(run.reload.ok).toBeGreaterThan(0);
    expect(run.reload.newPids).toBe(3);
    expect(run.stop.status).toBe(200);
    expect(run.stop.exitCode).toBe(0);
    expect(run.cpusLine).toBe("starting 1 worker (auto: cgroup quota 1 CPU)");
    expect(run.readOnly.status).toBe(200);
    expect(run.readOnly.user).toBe("65532");
  }, 180_000);
});
