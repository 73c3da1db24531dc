// The flags every control command shares: which running supervisor to talk to.

import { type ControlClient, connectControl, type Target } from "../control/client.ts";
import { usageError } from "../core/exit-codes.ts";

export const targetArgs = {
  port: {
    type: "string",
    alias: "p",
    valueHint: "port",
    description: "The supervisor serving this port (needed when several run)",
  },
  control: {
    type: "string",
    valueHint: "path",
    description: "The control socket's path (as given to run --control)",
  },
  pidfile: {
    type: "string",
    valueHint: "file",
    description:
      "The supervisor whose pid is in this file (as given to run --pidfile), e.g. a system service's",
  },
} as const;

export interface RawTargetArgs {
  port?: string;
  control?: string;
  pidfile?: string;
}

/** Check the flags (citty has no number type) and connect. */
export function connectTo(args: RawTargetArgs): Promise<ControlClient> {
  return connectControl(toTarget(args));
}

export function toTarget(args: RawTargetArgs): Target {
  const target: Target = {};
  if (args.port !== undefined) {
    const port = /^\d+$/.test(args.port) ? Number(args.port) : Number.NaN;
    if (!(port >= 1 && port <= 65535)) {
      throw usageError(`-p/--port must be a port number from 1 to 65535, got '${args.port}'`);
    }
    target.port = port;
  }
  if (args.control !== undefined) {
    if (args.control === "") throw usageError("--control needs a socket path");
    target.control = args.control;
  }
  if (args.pidfile !== undefined) {
    if (args.pidfile === "") throw usageError("--pidfile needs a file");
    target.pidfile = args.pidfile;
  }
  return target;
}
