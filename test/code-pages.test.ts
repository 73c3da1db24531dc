// src/os/code-pages.ts: once every worker is ready, the supervisor unmaps its own machine code and
// keeps mapped only what it runs again. Which mappings is a pure function of /proc/self/maps; the drop
// is checked on the compiled binary, in its own /proc/PID/smaps, with the supervisor still at work.
import { describe, expect, test } from "bun:test";
import { codeMappings } from "../src/os/code-pages.ts";
import { distinctPids, ensureBinary, fixture, residentCodeKb, startSupervisor, waitFor } from "./helpers.ts";

const EXE = "/opt/my tools/supervisor";
const MAPS = [
  `00200000-01a39000 r--p 00000000 fe:00 2425211                            ${EXE}`,
  `01a40000-0684a000 r-xp 01838000 fe:00 2425211                            ${EXE}`,
  `0684a000-0685f000 rw-p 06641000 fe:00 2425211                            ${EXE}`,
  `0685f000-06867000 r--p 06656000 fe:00 2425211                            ${EXE}`,
  "06867000-06a23000 rw-p 0665e000 fe:00 2425211                            /opt/my tools/supervisor2",
  "7f0000000000-7f0000021000 r-xp 00000000 fe:00 11                         /usr/lib/libc.so.6",
  "7f0000100000-7f0000200000 rw-p 00000000 00:00 0 ",
  "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]",
  "not a mapping",
  "",
].join("\n");

describe("which mappings are given back", () => {
  test("the binary's executable mapping only: not its data, not another file's code", () => {
    expect(codeMappings(MAPS, EXE)).toEqual([{ start: 0x1a40000n, length: 0x684a000n - 0x1a40000n }]);
  });

  test("a binary replaced on disk is still matched by its '(deleted)' name", () => {
    const deleted = `${EXE} (deleted)`;
    expect(codeMappings(MAPS.replaceAll(`${EXE}\n`, `${deleted}\n`), deleted)).toHaveLength(1);
  });

  test("no mapping of the binary, or no maps at all: nothing to do", () => {
    expect(codeMappings(MAPS, "/usr/bin/other")).toEqual([]);
    expect(codeMappings("", EXE)).toEqual([]);
  });
});

describe.if(process.platform === "linux")("the compiled supervisor once its workers are ready", () => {
  test("keeps less than half a worker's code resident, and still restarts, reloads and stops", async () => {
    ensureBinary();
    await using sup = startSupervisor(["run", fixture("pid-app.ts"), "-w", "2"], { binary: true });
    await sup.waitForOutput(/ready: 2 workers listening/);
    // Against a worker's, which runs the same binary: the parent's is ~21 MB before the drop, a
    // worker's ~25 MB, the parent's 3–9 MB after it. (Not against the parent's own at ready: on a
    // slow machine the drop, 1 s later, may come before the first read.)
    const [victim] = sup.workers();
    const code = await waitFor(() => {
      const own = residentCodeKb(sup.pid);
      const worker = residentCodeKb(victim as number);
      return own < worker / 2 ? { own, worker } : undefined;
    }, "the parent's resident code to fall below half a worker's");
    expect(code.own).toBeGreaterThan(0);
    // What runs again faults back in: a crash's restart, a reload, a stop.
    process.kill(victim as number, "SIGKILL");
    await waitFor(
      () => sup.workers().length === 2 && !sup.workers().includes(victim as number),
      "the restart",
    );
    expect((await distinctPids(sup.port, 2)).has(victim as number)).toBe(false);
    const before = new Set(sup.workers());
    process.kill(sup.pid, "SIGHUP");
    await waitFor(
      () => sup.workers().length === 2 && sup.workers().every((pid) => !before.has(pid)),
      "two new workers after HUP",
    );
    await distinctPids(sup.port, 2);
    process.kill(sup.pid, "SIGTERM");
    expect(await sup.exited).toBe(0);
  }, 30_000);
});
