// `supervisor reload`: replace every worker with a fresh one, without dropping requests (as HUP).

import { defineCommand } from "./argv.ts";
import { reportResult } from "./result.ts";
import { connectTo, type RawTargetArgs, targetArgs } from "./target.ts";

export const reloadCommand = defineCommand({
  meta: {
    name: "reload",
    description: "Replace every worker with a fresh one, without dropping requests (as HUP)",
  },
  args: targetArgs,
  async run({ args }) {
    reportResult(await (await connectTo(args as RawTargetArgs)).reload());
  },
});
