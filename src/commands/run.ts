// `supervisor run <entry>`: check everything that can be checked before a worker starts, then supervise.

import { accessSync, constants, statSync } from "node:fs";
import { resolve } from "node:path";
import { defineCommand } from "citty";
import { usageError } from "../exit-codes.ts";
import { createLogger } from "../log.ts";
import {
  DEFAULT_BOOT_TIMEOUT_S,
  DEFAULT_GRACEFUL_TIMEOUT_S,
  DEFAULT_TIMEOUT_S,
  type RawRunArgs,
  toOptions,
} from "../options.ts";
import { assertPortFree } from "../port.ts";
import { superviseWorkers } from "../supervisor.ts";

export const runArgs = {
  entry: {
    type: "positional",
    description: "The app's module: its default export is served",
    required: false,
  },
  workers: {
    type: "string",
    alias: "w",
    valueHint: "n",
    description: "Worker processes [env: WEB_CONCURRENCY] (default: 1)",
  },
  port: {
    type: "string",
    alias: "p",
    valueHint: "port",
    description: "Port to listen on [env: PORT] (default: 3000)",
  },
  host: {
    type: "string",
    alias: "H",
    valueHint: "host",
    description: "Address to listen on [env: HOST] (default: 0.0.0.0)",
  },
  "graceful-timeout": {
    type: "string",
    valueHint: "seconds",
    description: `Time a stopping worker gets to finish its requests before it is killed (default: ${DEFAULT_GRACEFUL_TIMEOUT_S})`,
  },
  "boot-timeout": {
    type: "string",
    valueHint: "seconds",
    description: `Time a starting worker gets to begin listening (default: ${DEFAULT_BOOT_TIMEOUT_S})`,
  },
  timeout: {
    type: "string",
    valueHint: "seconds",
    description: `Kill and replace a worker whose event loop is silent this long; 0 = off (default: ${DEFAULT_TIMEOUT_S})`,
  },
  "max-requests": {
    type: "string",
    valueHint: "n",
    description:
      "Replace a worker (rolling, no failed requests) after about n requests; 0 = never (default: 0)",
  },
  "max-requests-jitter": {
    type: "string",
    valueHint: "n",
    description:
      "Add 0..n requests per worker to --max-requests so workers do not recycle at once (default: 0)",
  },
  "max-memory": {
    type: "string",
    valueHint: "size",
    description: "Replace a worker whose RSS stays above this, e.g. 512M or 1G (default: no limit)",
  },
} as const;

export const runCommand = defineCommand({
  meta: { name: "run", description: "Start workers of a Bun app on one port and keep them alive" },
  args: runArgs,
  async run({ args }) {
    const options = toOptions(args as RawRunArgs, process.env);
    options.entry = checkEntry(options.entry);
    assertPortFree(options.host, options.port);
    const logger = createLogger();
    if (process.platform !== "linux" && options.workers > 1) {
      logger.warn(
        `SO_REUSEPORT does not balance connections on ${process.platform}: one worker may get them all`,
      );
    }
    logger.info(
      `starting ${options.workers} worker${options.workers === 1 ? "" : "s"} of ${options.entry} (supervisor pid ${process.pid})`,
    );
    return superviseWorkers(options, logger);
  },
});

// --- internal ---

/** The entry's absolute path, or a usage error naming what is wrong with it. */
function checkEntry(entry: string): string {
  const path = resolve(entry);
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
  } catch {
    throw usageError(`app file not found: ${entry}`);
  }
  if (!isFile) throw usageError(`app entry is not a file: ${entry}`);
  try {
    accessSync(path, constants.R_OK);
  } catch {
    throw usageError(`app file is not readable: ${entry}`);
  }
  return path;
}
