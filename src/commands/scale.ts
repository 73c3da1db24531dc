// `supervisor scale 4 | +1 | -1`: set or change the number of workers (as TTIN/TTOU).
// `-1` looks like a flag to citty (it arrives as an option named "1"), so the count is the first
// positional of scanArgs (src/commands/argv.ts), which knows negative numbers, not citty's.

import type { ArgsDef } from "citty";
import { MAX_WORKERS } from "../config/options.ts";
import { usageError } from "../core/exit-codes.ts";
import { defineCommand, scanArgs } from "./argv.ts";
import { reportResult } from "./result.ts";
import { connectTo, type RawTargetArgs, targetArgs } from "./target.ts";

const scaleArgs = {
  count: {
    type: "positional",
    required: false,
    valueHint: "n|+n|-n",
    description: "A worker count, or a change such as +1 or -1",
  },
  ...targetArgs,
} satisfies ArgsDef;

export const scaleCommand = defineCommand({
  meta: { name: "scale", description: "Set the number of workers (4), or change it (+1, -1)" },
  args: scaleArgs,
  async run({ args, rawArgs }) {
    const { workers, relative } = parseScale(countFromRawArgs(rawArgs));
    const client = await connectTo(args as RawTargetArgs);
    reportResult(await client.scale(workers, relative));
  },
});

/** "4" → 4 workers; "+2" / "-1" → a change by that many. */
export function parseScale(raw: string | undefined): { workers: number; relative: boolean } {
  if (raw === undefined)
    throw usageError("missing the worker count, e.g. supervisor scale 4, scale +1 or scale -1");
  const match = /^([+-]?)(\d{1,7})$/.exec(raw);
  const n = match ? Number(match[2]) : Number.NaN;
  if (match?.[1]) {
    if (n >= 1 && n <= MAX_WORKERS) return { workers: match[1] === "-" ? -n : n, relative: true };
  } else if (n >= 1 && n <= MAX_WORKERS) {
    return { workers: n, relative: false };
  }
  throw usageError(
    `the worker count must be a whole number from 1 to ${MAX_WORKERS}, or a change such as +1 or -1, got '${raw}'`,
  );
}

/** The count among the raw arguments: the first positional ("-1" counts). */
export function countFromRawArgs(rawArgs: string[]): string | undefined {
  return scanArgs(rawArgs, scaleArgs, true).positionals[0];
}
