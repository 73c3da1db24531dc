// What systemd notify support costs (src/runtime/notify.ts): loading the module and opening the socket
// through bun:ffi (once, only when NOTIFY_SOCKET is set), then each message.
//   bun scripts/bench/notify-cost.ts [messages]

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../../src/runtime/log.ts";
import { notifyReceiver } from "../../test/notify-receiver.ts";

const count = Number(process.argv[2] ?? 100_000);
const dir = mkdtempSync(join(tmpdir(), "sv-notify-cost-"));
using receiver = notifyReceiver(join(dir, "notify.sock"));
const logger = await createLogger({ format: "pretty", level: "warn" });

const cpu0 = process.cpuUsage();
const t0 = performance.now();
const { systemdNotifier } = await import("../../src/runtime/notify.ts");
const notifier = systemdNotifier(logger, { NOTIFY_SOCKET: receiver.address });
const loadMs = performance.now() - t0;
const loadCpu = process.cpuUsage(cpu0);
if (!notifier) throw new Error("no notifier");

const t1 = performance.now();
let sent = 0;
for (let i = 0; i < count; i++) {
  if (notifier.send(`STATUS=${i} of 4 workers ready`, true)) sent++;
  if (i % 5 === 4) receiver.messages().length = 0; // keep the receive queue from filling
}
const perMessageUs = ((performance.now() - t1) * 1000) / count;
notifier.close();
rmSync(dir, { recursive: true, force: true });
console.log(
  JSON.stringify({
    loadMs: +loadMs.toFixed(2),
    loadCpuMs: +((loadCpu.user + loadCpu.system) / 1000).toFixed(2),
    messages: count,
    sent,
    perMessageUs: +perMessageUs.toFixed(2),
  }),
);
