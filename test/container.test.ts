// The compiled binary in a real container engine: README's Dockerfile built with podman (its base
// images replaced by local stand-ins, since no registry is reachable: see
// test/fixtures/container-scenario.ts), run with the supervisor as ENTRYPOINT and PID 1.
// Needs root and podman (.ci/run installs podman and runc); skipped with the reason elsewhere.

import { describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureBinary, fixture, runScenario } from "./helpers.ts";

const isRoot = process.getuid?.() === 0;
const hasPodman = Bun.spawnSync(["sh", "-c", "command -v podman"]).exitCode === 0;
const podmanWorks = isRoot && hasPodman && canRunAContainer();
const canIsolate = isRoot && Bun.spawnSync(["unshare", "--net", "true"]).exitCode === 0;
const skipReason = !hasPodman
  ? "podman is not installed (.ci/run installs it)"
  : !isRoot
    ? "needs root (rootless podman is not set up here)"
    : !podmanWorks
      ? "podman cannot run a container here (`podman run` of the dynamic loader failed; see docs/DEPLOYMENT.md for the two containers.conf settings)"
      : !canIsolate
        ? "cannot make a private network namespace (unshare --net)"
        : "";
if (skipReason) console.warn(`test/container.test.ts skipped: ${skipReason}`);

/** Can podman run anything at all? A one-file image (glibc's loader, run as a program) answers. */
function canRunAContainer(): boolean {
  const loader = "/lib64/ld-linux-x86-64.so.2";
  if (!existsSync(loader))
    return Bun.spawnSync(["podman", "info"], { stdout: "ignore", stderr: "ignore" }).exitCode === 0;
  const dir = mkdtempSync(join(tmpdir(), "sv-podman-probe-"));
  try {
    mkdirSync(join(dir, "rootfs/lib64"), { recursive: true });
    copyFileSync(loader, join(dir, "rootfs", loader));
    const tarball = join(dir, "rootfs.tar");
    const image = "localhost/supervisor-test-probe";
    const imported = Bun.spawnSync(["podman", "image", "exists", image]).exitCode === 0;
    const steps = [
      ["tar", "-C", join(dir, "rootfs"), "-cf", tarball, "."],
      ...(imported ? [] : [["podman", "import", tarball, image]]),
      ["podman", "run", "--rm", "--network", "host", image, loader, "--version"],
    ];
    return steps.every((step) => Bun.spawnSync(step, { stdout: "ignore", stderr: "ignore" }).exitCode === 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

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
  readOnly: {
    code: { ownKb: number; workerKb: number };
    status: number;
    user: string;
    controlLine: string;
  };
  kube: {
    stopTimeout: number;
    cpuQuota: number;
    memoryBytes: number;
    readOnlyRootfs: boolean;
    user: string;
    healthcheck: string;
    startLine: string;
    app: number;
    readyz: number;
    execStatus: number;
    stop: { ms: number; status: number; readyzWhileStopping: number; exitCode: number };
  };
}

describe.skipIf(Boolean(skipReason))("container (podman, README's Dockerfile)", () => {
  // One run of the scenario (image build, containers, kube play) for both tests.
  const scenario = skipReason
    ? Promise.resolve({} as ContainerRun)
    : runScenario<ContainerRun>(fixture("container-scenario.ts"), [ensureBinary()]);
  scenario.catch(() => {}); // each test awaits it and reports the failure

  test("PID 1 with 3 workers; orphans reaped; HUP under load 0 failed; stop with a request in flight; --cpus=1; --read-only as non-root", async () => {
    const run = await scenario;
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
    expect(run.readOnly.code.ownKb).toBeLessThan(run.readOnly.code.workerKb / 2);
  }, 180_000);

  test("README's Kubernetes manifest under podman kube play: what podman honours, and a stop in flight", async () => {
    const { kube } = await scenario;
    // Honoured: the CPU limit as a cgroup quota (so -w auto is 1), the memory limit, the read-only
    // root filesystem with the emptyDir /tmp, the image's user; the admin port answers the probes' paths.
    expect(kube.cpuQuota).toBe(1);
    expect(kube.startLine).toBe("starting 1 worker (auto: cgroup quota 1 CPU)");
    expect(kube.memoryBytes).toBe(512 * 2 ** 20);
    expect(kube.readOnlyRootfs).toBe(true);
    expect(kube.user).toBe("65532:65532");
    expect([kube.app, kube.readyz, kube.execStatus]).toEqual([200, 200, 0]);
    // Not honoured by podman 4.3: terminationGracePeriodSeconds (its stop timeout stays 10 s), the
    // readinessProbe (dropped), and the livenessProbe becomes a `curl` inside the image (none in
    // distroless) run by systemd timers: podman cannot probe this image; Kubernetes' kubelet can.
    expect(kube.stopTimeout).toBe(10);
    expect(kube.healthcheck).toContain("curl");
    // TERM: /readyz says 503 during the 5 s shutdown delay, the request in flight completes, exit 0.
    expect(kube.stop).toMatchObject({ status: 200, readyzWhileStopping: 503, exitCode: 0 });
  }, 180_000);
});
