// systemd's notify protocol from a real supervisor to a real unix datagram socket (what systemd
// binds for a Type=notify unit): READY=1 → RELOADING=1 (HUP) → READY=1 → STOPPING=1 (TERM).

import { expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureBinary, fixture, startSupervisor, waitFor } from "./helpers.ts";
import { monotonicUsec, notifyReceiver } from "./notify-receiver.ts";

/** The first line of each datagram that is a state change, in order (STATUS= and WATCHDOG= aside). */
const states = (messages: string[]) =>
  messages.flatMap((m) => m.split("\n").filter((l) => /^(READY|RELOADING|STOPPING)=/.test(l)));

const waitForStates = (receiver: { messages(): string[] }, n: number) =>
  waitFor(
    () => states(receiver.messages()).length >= n && receiver.messages(),
    `${n} state messages; got ${JSON.stringify(receiver.messages())}`,
    20_000,
  );

test("READY=1, RELOADING=1 with MONOTONIC_USEC, READY=1, STOPPING=1 and STATUS lines, in order", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sv-notify-"));
  using receiver = notifyReceiver(join(dir, "notify.sock"));
  await using sup = startSupervisor(["run", fixture("pid-app.ts"), "-w", "2"], {
    env: { NOTIFY_SOCKET: receiver.address },
  });
  await waitForStates(receiver, 1);
  expect(states(receiver.messages())).toEqual(["READY=1"]);
  expect(receiver.messages().join("\n")).toContain("STATUS=2 of 2 workers ready");
  // Workers do not inherit the socket: systemd would ignore them, or take their messages for ours.
  for (const pid of sup.workers()) {
    expect(readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")).not.toContainEqual(
      expect.stringMatching(/^NOTIFY_SOCKET=/),
    );
  }

  const beforeHup = monotonicUsec();
  process.kill(sup.pid, "SIGHUP");
  await waitForStates(receiver, 3);
  const reloading = receiver.messages().find((m) => m.startsWith("RELOADING=1")) ?? "";
  const usec = BigInt(/MONOTONIC_USEC=(\d+)/.exec(reloading)?.[1] ?? "0");
  expect(usec).toBeGreaterThanOrEqual(beforeHup);
  expect(usec).toBeLessThanOrEqual(monotonicUsec());

  process.kill(sup.pid, "SIGTERM");
  await waitForStates(receiver, 4);
  expect(await sup.exited).toBe(0);
  expect(states(receiver.messages())).toEqual(["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"]);
  expect(receiver.messages().join("\n")).toContain("STATUS=reloading, ");
  rmSync(dir, { recursive: true, force: true });
});

test("an abstract socket name (@name) works, and WATCHDOG=1 comes at half of WATCHDOG_USEC", async () => {
  using receiver = notifyReceiver(`@sv-notify-test-${process.pid}-${Date.now()}`);
  await using sup = startSupervisor(["run", fixture("pid-app.ts"), "-w", "1"], {
    env: { NOTIFY_SOCKET: receiver.address, WATCHDOG_USEC: "100000" },
  });
  await waitFor(
    () => receiver.messages().filter((m) => m === "WATCHDOG=1").length >= 3,
    `3 WATCHDOG=1; got ${JSON.stringify(receiver.messages())}`,
  );
  expect(states(receiver.messages())).toContain("READY=1");
  process.kill(sup.pid, "SIGTERM");
  expect(await sup.exited).toBe(0);
});

test("WATCHDOG_PID of another process: no WATCHDOG=1 from us", async () => {
  using receiver = notifyReceiver(`@sv-notify-test-${process.pid}-${Date.now()}-other`);
  await using sup = startSupervisor(["run", fixture("pid-app.ts"), "-w", "1"], {
    env: { NOTIFY_SOCKET: receiver.address, WATCHDOG_USEC: "20000", WATCHDOG_PID: "1" },
  });
  await waitForStates(receiver, 1);
  // A reload round trip takes far longer than the 10 ms a watchdog ping would have taken.
  process.kill(sup.pid, "SIGHUP");
  await waitForStates(receiver, 3);
  process.kill(sup.pid, "SIGTERM");
  expect(await sup.exited).toBe(0);
  expect(receiver.messages()).not.toContain("WATCHDOG=1");
});

test("the compiled binary notifies too (bun:ffi inside a standalone executable)", async () => {
  ensureBinary();
  using receiver = notifyReceiver(`@sv-notify-test-${process.pid}-${Date.now()}-binary`);
  await using sup = startSupervisor(["run", fixture("pid-app.ts"), "-w", "2"], {
    binary: true,
    env: { NOTIFY_SOCKET: receiver.address },
  });
  await waitForStates(receiver, 1);
  process.kill(sup.pid, "SIGTERM");
  await waitForStates(receiver, 2);
  expect(await sup.exited).toBe(0);
  expect(states(receiver.messages())).toEqual(["READY=1", "STOPPING=1"]);
});

test("a failed reload (a broken app file) still ends with READY=1: systemd is not left reloading", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sv-notify-"));
  const entry = join(dir, "app.ts");
  copyFileSync(fixture("pid-app.ts"), entry);
  using receiver = notifyReceiver(join(dir, "notify.sock"));
  await using sup = startSupervisor(["run", entry, "-w", "1"], { env: { NOTIFY_SOCKET: receiver.address } });
  await waitForStates(receiver, 1);
  writeFileSync(entry, "export default { fetch( { oops };\n");
  process.kill(sup.pid, "SIGHUP");
  await waitForStates(receiver, 3);
  expect(states(receiver.messages())).toEqual(["READY=1", "RELOADING=1", "READY=1"]);
  expect(receiver.messages().at(-1)).toContain("STATUS=1 of 1 workers ready");
  process.kill(sup.pid, "SIGTERM");
  expect(await sup.exited).toBe(0);
  rmSync(dir, { recursive: true, force: true });
});
