// The supervisor's own log lines, one per event.
// - pretty on a terminal: consola's fancy reporter (colour);
// - pretty elsewhere (containers, systemd, files): `<ISO time> [supervisor] <level> <message>`;
// - json: one object per line, `{"time","level","msg","logger"}`, for log shippers.
// The level is set explicitly: consola's default drops to warn under NODE_ENV=test, which `bun test`
// sets and which the supervisor would otherwise inherit.

import {
  type ConsolaInstance,
  type ConsolaReporter,
  createConsola,
  LogLevels,
  type LogObject,
} from "consola";

export type Logger = ConsolaInstance;
export type LogFormat = "pretty" | "json";
export type LogLevelName = "debug" | "info" | "warn" | "error";

export interface LoggerOptions {
  format?: LogFormat;
  level?: LogLevelName;
  tty?: boolean;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const tty = options.tty ?? Boolean(process.stderr.isTTY && process.stdout.isTTY);
  const format = options.format ?? "pretty";
  const reporter = format === "json" ? jsonLines : tty ? undefined : plainLines;
  const logger = createConsola({
    level: LogLevels[options.level ?? "info"],
    ...(reporter ? { reporters: [reporter] } : {}),
  });
  return logger.withTag("supervisor");
}

// --- internal ---

const messageOf = (entry: LogObject) =>
  entry.args.map((a) => (typeof a === "string" ? a : Bun.inspect(a, { colors: false }))).join(" ");

/** warn and error go to stderr, the rest to stdout, as consola's own reporters do. */
const streamOf = (entry: LogObject) => (entry.level < LogLevels.info ? process.stderr : process.stdout);

const plainLines: ConsolaReporter = {
  log(entry) {
    const tag = entry.tag ? `[${entry.tag}] ` : "";
    streamOf(entry).write(`${entry.date.toISOString()} ${tag}${entry.type} ${messageOf(entry)}\n`);
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
    streamOf(entry).write(`${JSON.stringify(line)}\n`);
  },
};
