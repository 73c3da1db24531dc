// Exit codes are a protocol with whoever started us (a shell, systemd, Kubernetes): keep them stable.

export const ExitCode = {
  /** Clean shutdown (TERM, INT, QUIT, `supervisor stop`). */
  OK: 0,
  /** Runtime failure of the supervisor itself. */
  RUNTIME: 1,
  /** Usage error: bad flag or value, missing or unreadable entry file. */
  USAGE: 2,
  /** The app failed to boot: import failed, no handler exported, never ready, or the port is taken.
   * Also what a worker exits with when it cannot boot (Gunicorn's WORKER_BOOT_ERROR, uvicorn's 3). */
  BOOT: 3,
  /** A worker kept dying soon after start (--max-restarts in a row): the supervisor gave up so that
   * the orchestrator (systemd, Kubernetes) restarts or reports it, instead of looping inside. */
  CRASH_LOOP: 4,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** A failure that ends the CLI with one clear line and a documented exit code, never a stack trace. */
export class SupervisorError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue,
  ) {
    super(message);
    this.name = "SupervisorError";
  }
}

export const usageError = (message: string) => new SupervisorError(message, ExitCode.USAGE);
export const bootError = (message: string) => new SupervisorError(message, ExitCode.BOOT);

/**
 * What an error becomes at the end of the CLI: its lines (without the "supervisor: " prefix) and exit
 * code. A usage error may list several problems, one per line; an app's error keeps its own layout
 * (one message); a CLIError is citty's usage error; anything else is a bug of ours, still one line.
 */
export function describeError(error: unknown): { lines: string[]; exitCode: ExitCodeValue } {
  if (error instanceof SupervisorError) {
    const lines = error.exitCode === ExitCode.USAGE ? error.message.split("\n") : [error.message];
    return { lines, exitCode: error.exitCode };
  }
  if (error instanceof Error && error.name === "CLIError") {
    return { lines: [error.message], exitCode: ExitCode.USAGE };
  }
  return {
    lines: [`internal error: ${error instanceof Error ? error.message : String(error)}`],
    exitCode: ExitCode.RUNTIME,
  };
}
