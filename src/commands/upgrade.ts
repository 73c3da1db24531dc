// `supervisor upgrade`: replace the running supervisor by the binary now at its path, without
// dropping a request (as USR2). Answers when the old supervisor is done: exit 0, or 1 with the reason
// (refused, or the new one failed: the old one keeps serving).

import { defineCommand } from "./argv.ts";
import { reportResult } from "./result.ts";
import { connectTo, type RawTargetArgs, targetArgs } from "./target.ts";

export const upgradeCommand = defineCommand({
  meta: {
    name: "upgrade",
    description: "Replace the supervisor by the binary now at its path, without dropping requests (as USR2)",
  },
  args: targetArgs,
  async run({ args }) {
    reportResult(await (await connectTo(args as RawTargetArgs)).upgrade());
  },
});
