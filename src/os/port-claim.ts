// One supervisor per (host, port). The probe-bind (src/os/port-probe.ts) sees workers already listening, but
// two supervisors started at the same moment both probe before either has a worker, then share the
// port through SO_REUSEPORT and split its traffic. Ownership is therefore a Linux abstract Unix socket
// named after the address, "\0supervisor:port:<host>:<port>": bind(2) of one name is atomic (exactly
// one of two racing supervisors wins), the name lives in the network namespace, as the port does (not
// in a directory: another --control path or XDG_RUNTIME_DIR changes nothing), needs no file and no
// permission, and the kernel releases it when the process dies, even by SIGKILL. Bun opens it
// close-on-exec, so workers never inherit it. The owner answers a connection with its pid, for the
// loser's message. Elsewhere (macOS has no abstract sockets) only the probe guards the port.
//
// Handing the port over on purpose (a supervisor upgrade, src/runtime/upgrade.ts): the new supervisor is let
// past the claim only when its owner is the very process that started it as its successor
// (`claimFrom`), and takes the claim once the old one releases it: two unrelated supervisors never
// share the port.

import { bootError } from "../core/exit-codes.ts";

export interface PortClaim {
  /** The abstract socket's name without its leading NUL (as /proc/net/unix shows it, after "@"). */
  name: string;
  /** Give up ownership now (the kernel does it at exit anyway). Idempotent. */
  release(): void;
}

/** How long the loser waits for the owner's pid before it reports the clash without one. */
export const OWNER_PID_TIMEOUT_MS = 500;

/** Claim (host, port) for this process, or throw a boot error (exit 3) naming the owner. */
export async function claimPort(host: string, port: number): Promise<PortClaim> {
  const name = claimName(host, port);
  try {
    return bindClaim(name);
  } catch (error) {
    if ((error as { code?: string }).code !== "EADDRINUSE") throw error;
    throw await clash(name, host, port);
  }
}

/**
 * For the successor of an upgrade: the claim must be held by `owner` (the old supervisor that
 * started us), else this is the usual clash (exit 3). `take` claims it once the old one released it.
 */
export async function claimFrom(
  host: string,
  port: number,
  owner: number,
): Promise<{ take(timeoutMs: number): Promise<PortClaim> }> {
  const name = claimName(host, port);
  try {
    const claim = bindClaim(name); // nobody held it (the old one is gone, or not Linux): ours already
    return { take: async () => claim };
  } catch (error) {
    if ((error as { code?: string }).code !== "EADDRINUSE") throw error;
    if ((await ownerPid(name)) !== owner) throw await clash(name, host, port);
  }
  return {
    async take(timeoutMs) {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        try {
          return bindClaim(name);
        } catch (error) {
          if ((error as { code?: string }).code !== "EADDRINUSE" || performance.now() > deadline) throw error;
          await Bun.sleep(10);
        }
      }
    },
  };
}

/** The claim's name for an address; a host too long for sun_path is hashed. */
export function claimName(host: string, port: number): string {
  const key = host.toLowerCase();
  const name = `supervisor:port:${key}:${port}`;
  // sun_path holds 108 bytes including the leading NUL.
  return Buffer.byteLength(name) <= 100 ? name : `supervisor:port:#${Bun.hash(key).toString(16)}:${port}`;
}

// --- internal ---

/** Bind the abstract name (throws EADDRINUSE when someone holds it). */
function bindClaim(name: string): PortClaim {
  if (process.platform !== "linux") return { name, release() {} };
  const listener = Bun.listen({
    unix: `\0${name}`,
    socket: {
      open(socket) {
        socket.end(`${process.pid}\n`);
      },
      data() {},
    },
  });
  let released = false;
  return {
    name,
    release() {
      if (released) return;
      released = true;
      listener.stop(true);
    },
  };
}

async function clash(name: string, host: string, port: number) {
  const owner = await ownerPid(name);
  return bootError(
    `port ${port} on ${host} belongs to another supervisor${owner ? ` (pid ${owner})` : ""}; stop it first, or pick another port`,
  );
}

async function ownerPid(name: string): Promise<number | undefined> {
  // The owner binds, then listens: a connection in between is refused, so ask again until the deadline.
  const deadline = performance.now() + OWNER_PID_TIMEOUT_MS;
  while (performance.now() < deadline) {
    const pid = await askOwner(name, deadline - performance.now());
    if (pid !== undefined) return pid;
    await Bun.sleep(20);
  }
  return undefined;
}

function askOwner(name: string, timeoutMs: number): Promise<number | undefined> {
  let text = "";
  return new Promise<number | undefined>((resolve) => {
    const timer = setTimeout(() => done(undefined), timeoutMs);
    const done = (pid: number | undefined) => {
      clearTimeout(timer);
      resolve(pid);
    };
    Bun.connect({
      unix: `\0${name}`,
      socket: {
        data(_socket, chunk) {
          text += chunk.toString();
        },
        close() {
          const pid = Number.parseInt(text, 10);
          done(Number.isSafeInteger(pid) && pid > 0 ? pid : undefined);
        },
        error: () => done(undefined),
        connectError: () => done(undefined),
      },
    }).catch(() => done(undefined));
  });
}
