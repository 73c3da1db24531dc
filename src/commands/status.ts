// `supervisor status`: the workers of a running supervisor, as a table or (--json) its Snapshot.

import { renderStatus } from "../control/status-table.ts";
import { defineCommand } from "./argv.ts";
import { connectTo, type RawTargetArgs, targetArgs } from "./target.ts";

export const statusCommand = defineCommand({
  meta: { name: "status", description: "Show the workers of a running supervisor" },
  args: {
    ...targetArgs,
    json: { type: "boolean", description: "Print the snapshot as JSON, for scripts" },
  },
  async run({ args }) {
    const snapshot = await (await connectTo(args as RawTargetArgs)).status();
    process.stdout.write(args.json ? `${JSON.stringify(snapshot, null, 2)}\n` : renderStatus(snapshot));
  },
});
