// --pidfile: atomic write, stale files replaced, live owners refused, removal only of our own file.
// Owners are real processes: a live one is a `sleep` we spawn, a dead one a process we waited for.

import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ExitCode, SupervisorError } from "../src/core/exit-codes.ts";
import { processExists, readPidfile, removePidfile, writePidfile } from "../src/os/pidfile.ts";
import { ROOT } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "pidfile-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(dir, `app-${n++}.pid`);

/** The pid of a process that has exited and been reaped. */
async function deadPid(): Promise<number> {
  const proc = Bun.spawn(["true"]);
  await proc.exited;
  return proc.pid;
}

function thrown(fn: () => void): SupervisorError {
  try {
    fn();
  } catch (error) {
    if (error instanceof SupervisorError) return error;
    throw error;
  }
  throw new Error("expected a SupervisorError");
}

describe("writePidfile", () => {
  test("writes our pid and leaves no temp file", () => {
    const path = fresh();
    writePidfile(path);
    expect(readFileSync(path, "utf8")).toBe(`${process.pid}\n`);
    expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  test("replaces a stale file from a dead process", async () => {
    const path = fresh();
    const dead = await deadPid();
    expect(processExists(dead)).toBe(false);
    writeFileSync(path, `${dead}\n`);
    writePidfile(path);
    expect(readPidfile(path)).toBe(process.pid);
  });

  test.each([
    ["empty", ""],
    ["our own pid", `${process.pid}\n`],
  ])("replaces a file holding %s", (_name, text) => {
    const path = fresh();
    writeFileSync(path, text);
    writePidfile(path);
    expect(readPidfile(path)).toBe(process.pid);
  });

  test("refuses a live owner with exit code 2, naming its pid, and leaves its file alone", async () => {
    const path = fresh();
    await using owner = Bun.spawn(["sleep", "30"]);
    writeFileSync(path, `${owner.pid}\n`);
    const error = thrown(() => writePidfile(path));
    expect(error.exitCode).toBe(ExitCode.USAGE);
    expect(error.message).toBe(
      `pidfile ${path} belongs to running process ${owner.pid}; is another supervisor running?`,
    );
    expect(readPidfile(path)).toBe(owner.pid);
    expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    owner.kill("SIGKILL");
  });

  test("refuses to overwrite a file that is not a pidfile (a mistyped path)", () => {
    const path = fresh();
    writeFileSync(path, "export default {}\n");
    const error = thrown(() => writePidfile(path));
    expect(error.exitCode).toBe(ExitCode.USAGE);
    expect(error.message).toContain("does not hold a pid");
    expect(readFileSync(path, "utf8")).toBe("export default {}\n");
  });

  test("a missing directory is a usage error, not a stack trace", () => {
    const error = thrown(() => writePidfile(join(dir, "no-such-dir", "app.pid")));
    expect(error.exitCode).toBe(ExitCode.USAGE);
    expect(error.message).toStartWith(`cannot write pidfile ${join(dir, "no-such-dir", "app.pid")}: `);
    expect(error.message).toContain("ENOENT");
  });

  test("two processes racing for one pidfile: exactly one wins, the other exits 2 naming the winner", async () => {
    const path = fresh();
    const script = `
      const { writePidfile } = await import(${JSON.stringify(join(ROOT, "src", "os", "pidfile.ts"))});
      try { writePidfile(process.argv[1]); console.log("won"); }
      catch (e) { console.log(e.message); process.exit(e.exitCode); }
      await Bun.stdin.text(); // hold the pidfile while alive
    `;
    const racers = [0, 1, 2, 3].map(() =>
      Bun.spawn([process.execPath, "-e", script, path], { stdin: "pipe", stdout: "pipe" }),
    );
    try {
      const reader = (p: (typeof racers)[number]) => p.stdout.getReader();
      const firstLines = await Promise.all(
        racers.map(async (p) => new TextDecoder().decode((await reader(p).read()).value).trim()),
      );
      const winners = racers.filter((_, i) => firstLines[i] === "won");
      expect(winners.length).toBe(1);
      const winner = winners[0] as (typeof racers)[number];
      expect(readPidfile(path)).toBe(winner.pid);
      for (const [i, p] of racers.entries()) {
        if (p === winner) continue;
        expect(firstLines[i]).toContain(`running process ${winner.pid}`);
        expect(await p.exited).toBe(ExitCode.USAGE);
      }
    } finally {
      for (const p of racers) p.kill("SIGKILL");
      await Promise.all(racers.map((p) => p.exited));
    }
  });
});

describe("removePidfile", () => {
  test("removes the file while it holds our pid", () => {
    const path = fresh();
    writePidfile(path);
    expect(removePidfile(path)).toBe(true);
    expect(existsSync(path)).toBe(false);
  });

  test("leaves a file that another process has taken over", async () => {
    const path = fresh();
    await using other = Bun.spawn(["sleep", "30"]);
    writeFileSync(path, `${other.pid}\n`);
    expect(removePidfile(path)).toBe(false);
    expect(readPidfile(path)).toBe(other.pid);
    other.kill("SIGKILL");
  });

  test("a missing file is not an error", () => {
    expect(removePidfile(fresh())).toBe(false);
  });
});
