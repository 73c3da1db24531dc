// The supervisor's own log lines, one per event.
// - pretty on a terminal: `<local time> [supervisor] <level> <message>`, the level in colour (none
//   under NO_COLOR);
// - pretty elsewhere (containers, systemd, files): `<ISO time> [supervisor] <level> <message>`;
// - json: one object per line, `{"time","level","msg","logger"}`, for log shippers.
// The level is set explicitly: consola's default drops to warn under NODE_ENV=test, which `bun test`
// sets and which the supervisor would otherwise inherit. Only `consola/core` is loaded, with our own
// reporters: the full package (its "fancy" reporter) imports node:tty, node:util and node:readline,
// and once in the bundle they load with every start, 1.4 MB of the supervisor's PSS for the life of
// the service (docs/BENCHMARKS.md).
// Lines are written with console.log/console.error, never through process.stdout/stderr: Bun builds
// those as Node streams on first use (node:stream, node:tty): 3.2 MB of RSS on top of node:fs, and
// ~5 ms of every start.
// A console write is a plain write(2) of the line: on a pipe nobody reads any more it is dropped;
// on a full pipe it waits, as every worker writing to the same pipe does (and as Node, Gunicorn and
// systemd services do), instead of buffering without bound (docs/DESIGN.md, "The supervisor's own
// output"). The terminal's local time loads the time zone (~7.5 ms, 3.3 MB): only there is it shown.

import {
  type ConsolaInstance,
  type ConsolaReporter,
  createConsola,
  LogLevels,
  type LogObject,
} from "consola/core";
import { isTerminal } from "./terminal.ts";

export type Logger = ConsolaInstance;
export type LogFormat = "pretty" | "json";
export type LogLevelName = "debug" | "info" | "warn" | "error";

export interface LoggerOptions {
  format?: LogFormat;
  level?: LogLevelName;
  tty?: boolean;
}

export async function createLogger(options: LoggerOptions = {}): Promise<Logger> {
  const tty = options.tty ?? (isTerminal(1) && isTerminal(2));
  const level = LogLevels[options.level ?? "info"];
  const reporter = options.format === "json" ? jsonLines : tty ? terminalLines : plainLines;
  return createConsola({ level, reporters: [reporter] }).withTag("supervisor");
}

// --- internal ---

const messageOf = (entry: LogObject) =>
  entry.args.map((a) => (typeof a === "string" ? a : Bun.inspect(a, { colors: false }))).join(" ");

/** warn and error go to stderr, the rest to stdout, as consola's own reporters do; on a terminal
 * (both of them are one: see createLogger) all to stdout, because Bun's console.error paints a whole
 * line red there. A closed pipe (`supervisor run ... | head`) must not break the supervisor: a line
 * that cannot be written is dropped (Bun's console ignores EPIPE; the catch is for anything else). */
function write(entry: LogObject, line: string, tty = false): void {
  try {
    if (entry.level < LogLevels.info && !tty) console.error(line);
    else console.log(line);
  } catch {
    // nobody is reading
  }
}

const plainLines: ConsolaReporter = {
  log(entry) {
    const tag = entry.tag ? `[${entry.tag}] ` : "";
    write(entry, `${entry.date.toISOString()} ${tag}${entry.type} ${messageOf(entry)}`);
  },
};

/** SGR colour codes by level; anything else in the terminal's default colour. */
const LEVEL_COLOURS: Record<string, number> = {
  fatal: 31,
  error: 31,
  warn: 33,
  info: 36,
  success: 32,
  debug: 90,
  trace: 90,
};

const terminalLines: ConsolaReporter = {
  log(entry) {
    const tag = entry.tag ? `[${entry.tag}] ` : "";
    const time = entry.date.toTimeString().slice(0, 8);
    const colour = process.env.NO_COLOR ? undefined : (LEVEL_COLOURS[entry.type] ?? 39);
    const level = colour === undefined ? entry.type : `\x1b[${colour}m${entry.type}\x1b[39m`;
    write(entry, `${time} ${tag}${level} ${messageOf(entry)}`, true);
  },
};

const jsonLines: ConsolaReporter = {
  log(entry) {
    const line = {
      time: entry.date.toISOString(),
      level: entry.type,
      msg: messageOf(entry),
      logger: entry.tag,
    };
    write(entry, JSON.stringify(line));
  },
};
