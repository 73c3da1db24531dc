// An action's answer: its message on stdout when it worked, else one error line and exit code 1.

import type { ActionResult } from "../control/types.ts";
import { ExitCode, SupervisorError } from "../core/exit-codes.ts";

export function reportResult(result: ActionResult): void {
  if (!result.ok) throw new SupervisorError(result.message, ExitCode.RUNTIME);
  console.log(result.message);
}
