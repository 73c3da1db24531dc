// The one argv parser (src/commands/argv.ts): the values each command's `run` gets, as citty's
// runCommand gave them before it was replaced, plus what citty could not do.
import { describe, expect, test } from "bun:test";
import type { ArgsDef } from "citty";
import { commandArgs } from "../src/commands/argv.ts";
import { runArgs } from "../src/commands/run.ts";

const signalArgs = {
  name: { type: "positional", required: true },
  port: { type: "string", alias: "p" },
} satisfies ArgsDef;

describe("commandArgs", () => {
  test("flags by their long names, aliases included; the last value wins; positionals in order", () => {
    const args = commandArgs(["app.ts", "-w", "2", "--workers=4", "--port", "8000"], runArgs);
    expect(args.entry).toBe("app.ts");
    expect(args._).toEqual(["app.ts"]);
    expect(args.workers).toBe("4");
    expect(args.port).toBe("8000");
  });

  test("booleans: bare is true, --no-<flag> is false, an inline value is true unless it is 'false'", () => {
    expect(commandArgs(["--access-log"], runArgs)["access-log"]).toBe(true);
    expect(commandArgs(["--no-access-log"], runArgs)["access-log"]).toBe(false);
    expect(commandArgs(["--access-log=false"], runArgs)["access-log"]).toBe(false);
    expect(commandArgs(["--access-log=yes"], runArgs)["access-log"]).toBe(true);
    expect(commandArgs([], runArgs)["access-log"]).toBeUndefined();
  });

  test("after --, everything is a positional", () => {
    expect(commandArgs(["--", "-w", "app.ts"], runArgs)._).toEqual(["-w", "app.ts"]);
  });

  test("a missing required positional, an unknown flag, a flag without its value: usage errors", () => {
    expect(() => commandArgs(["-p", "8000"], signalArgs)).toThrow("missing NAME (see --help)");
    expect(commandArgs(["USR1"], signalArgs).name).toBe("USR1");
    expect(() => commandArgs(["app.ts", "--wokers", "2"], runArgs)).toThrow("unknown option '--wokers'");
    expect(() => commandArgs(["app.ts", "-w"], runArgs)).toThrow("option '-w' needs a value");
  });
});
