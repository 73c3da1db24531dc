// The supervisor's own log lines. On a terminal, consola's fancy reporter; elsewhere (containers,
// systemd, files) one plain line per event: `<ISO time> [supervisor] <level> <message>`.
// The level is set explicitly: consola's default drops to warn under NODE_ENV=test, which `bun test`
// sets and which the supervisor would otherwise inherit.

import { type ConsolaInstance, type ConsolaReporter, createConsola, LogLevels } from "consola";

export type Logger = ConsolaInstance;

export function createLogger(options: { tty?: boolean } = {}): Logger {
  const tty = options.tty ?? Boolean(process.stderr.isTTY && process.stdout.isTTY);
  const logger = createConsola({ level: LogLevels.info, ...(tty ? {} : { reporters: [plainLines] }) });
  return logger.withTag("supervisor");
}

// --- internal ---

const plainLines: ConsolaReporter = {
  log(entry) {
    const tag = entry.tag ? `[${entry.tag}] ` : "";
    const text = entry.args.map((a) => (typeof a === "string" ? a : Bun.inspect(a))).join(" ");
    const line = `${entry.date.toISOString()} ${tag}${entry.type} ${text}\n`;
    // warn and error go to stderr, the rest to stdout, as consola's own reporters do.
    (entry.level < LogLevels.info ? process.stderr : process.stdout).write(line);
  },
};
