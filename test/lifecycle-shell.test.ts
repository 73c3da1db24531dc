// The core's decisions as the shell carries them out, with real processes: start-up lines, reload
// answers and deadlines, --max-memory sampling.
import { describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sampleResidentBytes } from "../src/os/proc.ts";
import { fixture, get, pidOf, ROOT, startSupervisor, waitFor } from "./helpers.ts";

/** `supervisor ...args` from source, to its exit. */
async function cli(args: string[]) {
  await using proc = Bun.spawn([process.execPath, join(ROOT, "src", "cli.ts"), ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, out: stdout + stderr };
}

/** A private directory with a version file and a control socket path. */
function deployDir(version: string) {
  const dir = mkdtempSync(join(tmpdir(), "sv-core-"));
  const versionFile = join(dir, "version");
  writeFileSync(versionFile, version);
  return { dir, versionFile, control: join(dir, "control.sock") };
}

/** The versions every worker answers with, asking until each live worker pid has answered. */
async function versionsServed(port: number, workers: () => number[]): Promise<Map<number, string>> {
  const seen = new Map<number, string>();
  await waitFor(async () => {
    const { body } = await get(port);
    seen.set(pidOf(body), /version (\S+)/.exec(body)?.[1] ?? "?");
    return workers().every((pid) => seen.has(pid));
  }, "an answer from every worker");
  return new Map([...seen].filter(([pid]) => workers().includes(pid)));
}

describe("start-up lines", () => {
  test("one line per worker with the time its app took to start, at boot and for a replacement", async () => {
    await using sup = startSupervisor(["run", fixture("slow-boot-app.ts"), "-w", "2"], {
      env: { BOOT_MS: "300" },
    });
    await sup.waitForOutput(/ready: 2 workers listening/, 20_000);
    const started = [...sup.output().matchAll(/worker (\d) \(pid (\d+)\): app started in (\d+) ms/g)];
    expect(started.map((m) => m[1]).sort()).toEqual(["0", "1"]);
    for (const m of started) expect(Number(m[3])).toBeGreaterThanOrEqual(300);
    const [victim] = sup.workers();
    process.kill(victim as number, "SIGKILL");
    await sup.waitForOutput(
      /died: signal SIGKILL \(perhaps out of memory\?\)[^\n]*\n[^\n]*app started in \d+ ms/,
    );
  });
});

describe("supervisor reload answers cover the code asked for", () => {
  test("two reloads at once: when the second says finished, every worker runs the code it asked for", async () => {
    const { versionFile, control } = deployDir("1");
    await using sup = startSupervisor(["run", fixture("version-app.ts"), "-w", "2", "--control", control], {
      env: { VERSION_FILE: versionFile, BOOT_MS: "600" },
    });
    await sup.waitForOutput(/ready: 2 workers listening/, 20_000);
    writeFileSync(versionFile, "2");
    const first = cli(["reload", "--control", control]);
    // The first reload's replacement has read version 2 and is still starting when the second is asked.
    await sup.waitForOutput(/imported version 2/);
    writeFileSync(versionFile, "3");
    const second = await cli(["reload", "--control", control]);
    expect(second).toMatchObject({ code: 0 });
    expect(second.out).toMatch(/reload finished: \d+ workers replaced/);
    // Before: both were told "reload finished" while the worker started for the first still ran
    // version 2, and kept serving it. (Drained workers finish their requests first: wait them out.)
    await waitFor(() => sup.workers().length === 2, "the drained workers to exit");
    expect([...(await versionsServed(sup.port, sup.workers)).values()]).toEqual(["3", "3"]);
    expect((await first).code).toBe(0);
  });

  test("a slow rolling reload of 8 workers is answered when it is done, not at boot + grace + 1 s", async () => {
    const { versionFile, control } = deployDir("1");
    const args = ["-w", "8", "--boot-timeout", "3", "--graceful-timeout", "1", "--control", control];
    await using sup = startSupervisor(["run", fixture("version-app.ts"), ...args], {
      env: { VERSION_FILE: versionFile, BOOT_MS: "700" },
    });
    await sup.waitForOutput(/ready: 8 workers listening/, 30_000);
    writeFileSync(versionFile, "2");
    // 8 boots of ≥ 0.7 s one after another: more than the old fixed 3 + 1 + 1 = 5 s.
    const reload = await cli(["reload", "--control", control]);
    expect(reload.out).toMatch(/reload finished: 8 workers replaced in (\d+\.\d s)/);
    expect(reload.code).toBe(0);
    await waitFor(() => sup.workers().length === 8, "the drained workers to exit");
    expect(new Set((await versionsServed(sup.port, sup.workers)).values())).toEqual(new Set(["2"]));
  }, 90_000);
});

describe("--max-requests after a failed replacement", () => {
  test("a worker whose recycle failed (a broken app file) is recycled once the file is fixed", async () => {
    const { dir } = deployDir("1");
    const entry = join(dir, "app.ts");
    copyFileSync(fixture("pid-app.ts"), entry);
    // --timeout 2: a heartbeat every 500 ms, at which the worker's retirement is tried again.
    await using sup = startSupervisor(["run", entry, "-w", "1", "--max-requests", "3", "--timeout", "2"]);
    await sup.waitForOutput(/ready: 1 worker listening/, 20_000);
    const [first] = sup.workers();
    writeFileSync(entry, "export default { fetch( { oops };\n");
    for (let i = 0; i < 4; i++) expect((await get(sup.port)).status).toBe(200);
    await sup.waitForOutput(/could not replace worker 0 \(pid \d+\) \(max-requests\), keeping it/);
    copyFileSync(fixture("pid-app.ts"), entry);
    // Before: the retire message was sent once, and this worker was never recycled again.
    await sup.waitForOutput(/worker 0 \(pid \d+\) stopped \(max-requests\): exit code 0/);
    expect(sup.workers()).not.toContain(first);
    expect((await get(sup.port)).status).toBe(200);
  });
});

describe("--max-memory samples memory itself", () => {
  test("a worker leaking 50 MB/s is replaced soon after it crosses --max-memory 150M", async () => {
    await using sup = startSupervisor(["run", fixture("leak-app.ts"), "-w", "1", "--max-memory", "150M"]);
    await sup.waitForOutput(/ready: 1 worker listening/, 20_000);
    const [leaking] = sup.workers();
    let peak = 0;
    await waitFor(
      () => {
        const bytes = leaking === undefined ? undefined : sampleResidentBytes(leaking);
        if (bytes === undefined) return true; // replaced and gone
        peak = Math.max(peak, bytes);
        return false;
      },
      "the leaking worker to be replaced",
      30_000,
    );
    await sup.waitForOutput(/will be replaced \(RSS 1[5-9]\d MiB above --max-memory 150 MiB\)/);
    await sup.waitForOutput(/stopped \(max-memory\): exit code 0/);
    // Measured 1.19-1.20x here (scripts/bench/memory-sampling.ts); before, heartbeats 5 s apart let it
    // reach 3.8x. The bound is looser than the measure so a loaded machine does not flake it.
    expect(peak / (150 * 2 ** 20)).toBeLessThan(1.5);
    expect((await get(sup.port)).status).toBe(200);
  });
});
