// `supervisor signal USR1|USR2`: send a signal to every worker, for the app's own handlers (USR2 to
// the supervisor itself means upgrade, as in Gunicorn; this is how the app still gets it).

import { usageError } from "../core/exit-codes.ts";
import { defineCommand } from "./argv.ts";
import { reportResult } from "./result.ts";
import { connectTo, type RawTargetArgs, targetArgs } from "./target.ts";

export const signalCommand = defineCommand({
  meta: { name: "signal", description: "Send USR1 or USR2 to every worker" },
  args: {
    name: { type: "positional", description: "USR1 or USR2 (SIGUSR1, SIGUSR2)", required: true },
    ...targetArgs,
  },
  async run({ args }) {
    const name = String(args.name)
      .toUpperCase()
      .replace(/^(SIG)?/, "SIG");
    if (name !== "SIGUSR1" && name !== "SIGUSR2") {
      throw usageError(`signal must be USR1 or USR2, got '${args.name}'`);
    }
    reportResult(await (await connectTo(args as RawTargetArgs)).signal(name));
  },
});
