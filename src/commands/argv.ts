// What citty cannot do, done once, from the same argument definitions citty parses with. citty 0.2
// hands argv to node:util's parseArgs with `strict: false` and without `multiple`, so it
//   - keeps unknown flags silently (a typo like `--worker 4` would start 1 worker);
//   - keeps only the last of a repeated flag (`--env A=1 --env B=2`);
//   - turns a boolean flag's inline value into true (`--watch=src,lib`);
//   - reads a negative number as a short flag (`supervisor scale -1` arrives as an option "1");
//   - and has no number type (numbers stay strings: src/config/options.ts parses them, once).
// `scanArgs` walks argv in citty's own terms (long names, aliases, `--no-<boolean>`, `--`) and
// answers those questions; every other value is citty's.

import type { ArgsDef } from "citty";
import { usageError } from "../core/exit-codes.ts";

export interface ScannedArgs {
  /** Every flag given, in order, by its long name: a string, or for a boolean true/false (or its
   * inline `--flag=value` text). */
  flags: { name: string; value: string | boolean }[];
  positionals: string[];
}

/** Throws a usage error for an unknown flag or a flag without its value. `negativeNumbers`: a lone
 * `-1` is a value, not a flag (only `scale` takes one). */
export function scanArgs(rawArgs: string[], argsDef: ArgsDef, negativeNumbers = false): ScannedArgs {
  const byName = new Map<string, { name: string; takesValue: boolean; negated?: boolean }>();
  for (const [name, def] of Object.entries(argsDef)) {
    if (def.type === "positional") continue;
    const takesValue = def.type === "string" || def.type === "enum";
    const alias = "alias" in def ? def.alias : undefined;
    for (const n of [name, ...(alias === undefined ? [] : [alias].flat())])
      byName.set(n, { name, takesValue });
    if (def.type === "boolean") byName.set(`no-${name}`, { name, takesValue: false, negated: true });
  }
  const scanned: ScannedArgs = { flags: [], positionals: [] };
  for (let i = 0; i < rawArgs.length; i++) {
    const arg = rawArgs[i] as string;
    if (arg === "--") {
      scanned.positionals.push(...rawArgs.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-" || (negativeNumbers && /^-\d+$/.test(arg))) {
      scanned.positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const written = eq === -1 ? arg : arg.slice(0, eq);
    const known = byName.get(written.replace(/^--?/, ""));
    if (!known) throw usageError(`unknown option '${written}' (see --help)`);
    let value: string | boolean;
    if (eq !== -1) value = arg.slice(eq + 1);
    else if (!known.takesValue) value = !known.negated;
    else if (i + 1 < rawArgs.length) value = rawArgs[++i] as string;
    else throw usageError(`option '${arg}' needs a value`);
    scanned.flags.push({ name: known.name, value });
  }
  return scanned;
}

/** Every value of one flag, in order. */
export const valuesOf = (scanned: ScannedArgs, name: string) =>
  scanned.flags.filter((f) => f.name === name).map((f) => f.value);
