// `supervisor stop`: graceful shutdown of a running supervisor (as TERM); answers once it is done.

import { defineCommand } from "./argv.ts";
import { reportResult } from "./result.ts";
import { connectTo, type RawTargetArgs, targetArgs } from "./target.ts";

export const stopCommand = defineCommand({
  meta: { name: "stop", description: "Stop a running supervisor gracefully (as TERM)" },
  args: targetArgs,
  async run({ args }) {
    reportResult(await (await connectTo(args as RawTargetArgs)).stop());
  },
});
