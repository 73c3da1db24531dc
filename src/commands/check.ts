// `supervisor check [entry]`: load the config and the app in one throwaway worker on a free loopback
// port, report problems, start nothing else. Exit 0 (ok), 2 (bad config or flags) or 3 (app cannot boot).

import { bootError } from "../core/exit-codes.ts";
import { heartbeatInterval } from "../core/timings.ts";
import type { Event } from "../core/types.ts";
import { availableCpus } from "../os/cpus.ts";
import { createWorkerHost } from "../runtime/host.ts";
import { checkRunnable } from "../runtime/preflight.ts";
import { defineCommand } from "./argv.ts";
import { resolveFromCli, runArgs } from "./run.ts";

export const checkCommand = defineCommand({
  meta: { name: "check", description: "Load the config and the app in a throwaway worker; start nothing" },
  args: runArgs,
  async run({ args, rawArgs }) {
    const { options, config } = await resolveFromCli(args, rawArgs);
    const { entry } = checkRunnable(options);
    const started = performance.now();
    const outcome = await bootOnce(entry, options.bootTimeoutMs, options.env);
    if (outcome.type !== "ready") {
      const why = outcome.type === "boot-error" ? outcome.message : `the worker exited before it was ready`;
      throw bootError(`${entry} failed to boot: ${why}`);
    }
    const ms = Math.round(performance.now() - started);
    console.log(
      `ok: ${entry} loads and serves (a worker was ready in ${ms} ms)${config ? `; config ${config.file} is valid` : ""}`,
    );
    // The host's settings are advice, not errors: they do not change the exit code.
    const { formatFindings, hostFindings } = await import("../os/host-checks.ts");
    const workers = options.workers === "auto" ? availableCpus().count : options.workers;
    const findings = hostFindings(workers);
    if (findings.length > 0) {
      console.log(
        `host settings for ${workers} worker${workers === 1 ? "" : "s"}:\n${formatFindings(findings)}`,
      );
    }
    return 0;
  },
});

// --- internal ---

type Outcome = Extract<Event, { type: "ready" | "boot-error" | "exit" }> | { type: "timeout" };

/** Start one worker on a free loopback port and report how its boot ended. */
function bootOnce(entry: string, bootTimeoutMs: number, env: Record<string, string>): Promise<Outcome> {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return new Promise<Outcome>((resolve) => {
    let bootMessage: string | undefined;
    const host = createWorkerHost(
      {
        worker: {
          entry,
          port,
          host: "127.0.0.1",
          gracefulTimeoutMs: 0,
          bootTimeoutMs,
          maxRequests: 0,
          maxRequestsJitter: 0,
          accessLog: false,
          logFormat: "pretty",
          idleTimeout: { seconds: 10, explicit: false },
          maxBody: { bytes: 2 ** 20, explicit: false },
          development: false,
        },
        env: { ...process.env, ...env },
      },
      (event) => {
        if (event.type === "boot-error") bootMessage = event.message;
        if (event.type === "ready") {
          clearTimeout(timer);
          host.kill(1, "SIGKILL");
          resolve(event);
        }
        if (event.type === "exit") {
          clearTimeout(timer);
          resolve(bootMessage ? { type: "boot-error", id: 1, message: bootMessage } : event);
        }
      },
    );
    const timer = setTimeout(() => {
      host.kill(1, "SIGKILL");
      resolve({ type: "timeout" });
    }, bootTimeoutMs);
    host.spawn(1, 0, heartbeatInterval(0));
  });
}
