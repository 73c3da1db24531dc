#!/usr/bin/env bun
// The `supervisor` executable. This file owns help, version, unknown flags and the mapping of every
// error to one line and a documented exit code (never a stack trace). The commands are citty's
// definitions, but src/commands/argv.ts parses them: citty's parser (node:util's parseArgs) cost the
// long-running `run` process 0.26 MB, and argv.ts already had to walk argv for what citty misses.
// citty is called only to render --help.

import type { ArgsDef, CommandDef } from "citty";
import pkg from "../package.json" with { type: "json" };
import { commandArgs, defineCommand } from "./commands/argv.ts";
import { describeError, ExitCode, usageError } from "./core/exit-codes.ts";
import { startupSignals } from "./runtime/signals.ts";
import { isTerminal } from "./runtime/terminal.ts";

/** Loaded on demand: `supervisor run` starts without evaluating the control client, and `status`
 * without the lifecycle (start-up time is part of every launch and every restart of the service). */
const subCommands: Record<string, () => Promise<CommandDef<ArgsDef>>> = {
  run: () => import("./commands/run.ts").then((m) => m.runCommand as CommandDef<ArgsDef>),
  check: () => import("./commands/check.ts").then((m) => m.checkCommand as CommandDef<ArgsDef>),
  status: () => import("./commands/status.ts").then((m) => m.statusCommand as CommandDef<ArgsDef>),
  reload: () => import("./commands/reload.ts").then((m) => m.reloadCommand as CommandDef<ArgsDef>),
  scale: () => import("./commands/scale.ts").then((m) => m.scaleCommand as CommandDef<ArgsDef>),
  stop: () => import("./commands/stop.ts").then((m) => m.stopCommand as CommandDef<ArgsDef>),
  top: () => import("./commands/top.ts").then((m) => m.topCommand as CommandDef<ArgsDef>),
  upgrade: () => import("./commands/upgrade.ts").then((m) => m.upgradeCommand as CommandDef<ArgsDef>),
  signal: () => import("./commands/signal.ts").then((m) => m.signalCommand as CommandDef<ArgsDef>),
};

const main = defineCommand({
  meta: { name: "supervisor", version: pkg.version, description: "Process manager for Bun web apps" },
  subCommands,
});

/** JavaScriptCore's tier-up thresholds ×1000 in the supervisor's own process (never in a worker: a
 * worker is another process, and the app's code is JIT-compiled as usual). The supervisor runs a
 * little code now and then; compiled, it cost 2–3 MB of JIT memory and a JIT thread started and
 * stopped again at idle (docs/BENCHMARKS.md). The binary starts with it already
 * (`--compile-jit-policy`, scripts/build.ts); this call is for a run from source. */
const PARENT_JIT_POLICY = 1000;

export async function cli(argv: string[]): Promise<number> {
  Bun.unsafe.setJITPolicy(PARENT_JIT_POLICY);
  const name = argv.find((a) => !a.startsWith("-"));
  // `run` owns its signals from the first moment, before the config file loads (src/runtime/signals.ts).
  if (name === "run" && !argv.includes("--help") && !argv.includes("-h")) startupSignals();
  try {
    const load = name && Object.hasOwn(subCommands, name) ? subCommands[name] : undefined;
    const sub = load ? await load() : undefined;
    if (argv.includes("--help") || argv.includes("-h")) {
      const usage = await renderUsage(sub ?? main, sub ? main : undefined);
      console.log(plain(`${usage}\n`, isTerminal(1)));
      return ExitCode.OK;
    }
    if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-v")) {
      console.log(pkg.version);
      return ExitCode.OK;
    }
    if (!sub) {
      if (!name) console.error(plain(`${await renderUsage(main)}\n`, isTerminal(2)));
      throw usageError(
        name
          ? `unknown command '${name}' (see --help)`
          : "missing a command, e.g. supervisor run app.ts -w 4",
      );
    }
    const rawArgs = argv.slice(argv.indexOf(name as string) + 1);
    // An unknown flag is a usage error (src/commands/argv.ts). Only `scale` takes a negative
    // number (`scale -1`); elsewhere `-1` is a typo'd flag.
    const args = commandArgs(rawArgs, (await resolveArgs(sub)) ?? {}, name === "scale");
    const result = await sub.run?.({ args, rawArgs, cmd: sub } as Parameters<NonNullable<typeof sub.run>>[0]);
    return typeof result === "number" ? result : ExitCode.OK;
  } catch (error) {
    return reportError(error);
  }
}

// --- internal ---

async function renderUsage(cmd: CommandDef<ArgsDef>, parent?: CommandDef<ArgsDef>): Promise<string> {
  const citty = await import("citty");
  return citty.renderUsage(cmd, parent);
}

/** citty colours its usage text; keep escape codes out of pipes and files. */
const plain = (text: string, tty: boolean) => (tty ? text : Bun.stripANSI(text));

async function resolveArgs(cmd: CommandDef<ArgsDef>): Promise<ArgsDef | undefined> {
  const args = cmd.args;
  return typeof args === "function" ? await args() : await args;
}

function reportError(error: unknown): number {
  const { lines, exitCode } = describeError(error);
  for (const line of lines) console.error(`supervisor: ${line}`);
  // A bug of ours: the stack only when asked for.
  if (exitCode === ExitCode.RUNTIME && process.env.SUPERVISOR_DEBUG && error instanceof Error)
    console.error(error.stack);
  return exitCode;
}

if (import.meta.main) process.exit(await cli(process.argv.slice(2)));
