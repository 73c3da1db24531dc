// `supervisor run [entry]`: resolve the options (flag > environment > config file > default), then
// start (src/runtime/start.ts), or with --print-config show the resolved settings and where each came from.

import type { ArgDef, ArgsDef } from "citty";
import { findConfig, type LoadedConfig, loadConfig } from "../config/file.ts";
import { configKey, envName, OPTIONS, type RunOptions, type Sources } from "../config/options.ts";
import { resolveRunOptions } from "../config/resolve.ts";
import { describeError, usageError } from "../core/exit-codes.ts";
import { createLogger } from "../runtime/log.ts";
import { startupSignals } from "../runtime/signals.ts";
import { startRun } from "../runtime/start.ts";
import { defineCommand, scanArgs, valuesOf } from "./argv.ts";

/** citty's flag definitions, generated from the option table so help, flags and config never drift. */
export const runArgs = {
  entry: {
    type: "positional",
    description: "The app's module: its default export is served",
    required: false,
  },
  ...Object.fromEntries(
    OPTIONS.map((spec) => {
      const env = [envName(spec), ...(spec.conventions ?? [])].join(", ");
      const def = {
        type: spec.kind,
        description: `${spec.description} [env: ${env}]${defaultText(spec.key.endsWith("Ms") && typeof spec.fallback === "number" ? spec.fallback / 1000 : spec.fallback)}`,
        ...(spec.alias ? { alias: spec.alias } : {}),
        ...(spec.valueHint ? { valueHint: spec.valueHint } : {}),
      } satisfies ArgDef;
      return [spec.flag, def];
    }),
  ),
  config: {
    type: "string",
    valueHint: "file",
    description: "Config file (default: ./supervisor.config.{ts,js,json})",
  },
  "print-config": {
    type: "boolean",
    description: "Print the resolved settings and where each came from, then exit",
  },
} satisfies ArgsDef;

export const runCommand = defineCommand({
  meta: { name: "run", description: "Start workers of a Bun app on one port and keep them alive" },
  args: runArgs,
  async run({ args, rawArgs }) {
    // Until the options are resolved, the flag and the variable say whether errors must be JSON.
    let json = jsonAsked(rawArgs, process.env);
    // An error escaping while the config file loads (a timer it starts): one line, exit 1.
    startupSignals().onEscaped((error) => {
      void printError(error, json).then((code) => process.exit(code));
    });
    try {
      const { options, sources, config } = await resolveFromCli(args, rawArgs);
      json = options.logFormat === "json";
      if (args["print-config"]) {
        console.log(renderConfig(options, sources, config));
        return 0;
      }
      const reresolve = async () => {
        const again = await resolveFromCli(args, rawArgs);
        return { options: again.options, sources: again.sources };
      };
      return await startRun(options, sources, config, reresolve);
    } catch (error) {
      if (!json) throw error; // src/cli.ts prints it (and its stack under SUPERVISOR_DEBUG)
      return printError(error, json);
    }
  },
});

/** The CLI's one line per problem ("supervisor: <line>"), or with --log-format json a JSON log line
 * each, so a log shipper sees only JSON; returns the exit code. */
async function printError(error: unknown, json: boolean): Promise<number> {
  const { lines, exitCode } = describeError(error);
  if (!json) {
    for (const line of lines) console.error(`supervisor: ${line}`);
    return exitCode;
  }
  const logger = await createLogger({ format: "json" });
  for (const line of lines) logger.error(line);
  return exitCode;
}

/** The same resolution for `run` and `check`: flags, environment, then the config file. */
export async function resolveFromCli(args: Record<string, unknown>, rawArgs: string[]) {
  const extra = (Array.isArray(args._) ? args._ : []).slice(1);
  if (extra.length > 0)
    throw usageError(`unexpected argument '${extra[0]}': one app entry only (see --help)`);
  const flags: Record<string, unknown> = { entry: args.entry };
  for (const spec of OPTIONS) {
    if (spec.flag === "env" || spec.flag === "watch") continue;
    const value = args[spec.flag];
    if (value !== undefined) flags[spec.flag] = value;
  }
  // `args` keeps the last --env only, and --watch=dir is a boolean flag with a value (src/commands/argv.ts).
  const scanned = scanArgs(rawArgs, runArgs);
  const env = valuesOf(scanned, "env");
  if (env.length > 0) flags.env = env;
  const watch = valuesOf(scanned, "watch").at(-1);
  if (watch !== undefined) flags.watch = watch;
  const configPath = findConfig(args.config as string | undefined, process.cwd());
  const config = configPath ? await loadConfig(configPath) : undefined;
  const { options, sources } = resolveRunOptions({
    flags,
    env: process.env,
    ...(config ? { config: { file: config.file, values: config.values } } : {}),
  });
  return { options, sources, config };
}

// --- internal ---

/** --log-format json (or =json), or SUPERVISOR_LOG_FORMAT=json: the last flag wins over the variable. */
function jsonAsked(rawArgs: string[], env: Record<string, string | undefined>): boolean {
  return (valuesOf(scanArgs(rawArgs, runArgs), "log-format").at(-1) ?? env.SUPERVISOR_LOG_FORMAT) === "json";
}

function defaultText(value: unknown): string {
  if (value === undefined || value === false || (Array.isArray(value) && value.length === 0)) return "";
  if (typeof value === "object" && !Array.isArray(value) && Object.keys(value as object).length === 0)
    return "";
  return ` (default: ${value})`;
}

function renderConfig(options: RunOptions, sources: Sources, config: LoadedConfig | undefined): string {
  const rows: [string, string, string][] = [["entry", options.entry, sources.entry]];
  for (const spec of OPTIONS) {
    const value = options[spec.key];
    const shown =
      value === undefined ? "-" : typeof value === "object" ? JSON.stringify(value) : String(value);
    // Durations are shown in seconds, as they are given on the command line and in the config file.
    const text =
      typeof value === "number" && spec.key.endsWith("Ms")
        ? `${value / 1000} s`
        : typeof value === "number" && spec.key.endsWith("Bytes")
          ? `${value} bytes`
          : shown;
    rows.push([configKey(spec), text, sources[spec.key]]);
  }
  const width = (i: 0 | 1) => Math.max(...rows.map((r) => r[i].length));
  const head = config ? `config file: ${config.path}\n` : "config file: none\n";
  return head + rows.map(([k, v, s]) => `${k.padEnd(width(0))}  ${v.padEnd(width(1))}  ${s}`).join("\n");
}
