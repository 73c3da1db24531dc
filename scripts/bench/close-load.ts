// Connection-per-request load that counts failures exactly: CONNS loops, each opening a connection,
// sending one `Connection: close` request and reading to EOF; a response that is not a whole
// `HTTP/1.1 2xx` is a failure, and so is a refused or reset connection.
// wrk cannot count these: Bun closes the connection without a `Connection: close` response header, so
// wrk logs one "read" socket error per request and real resets hide among them.
// usage: bun close-load.ts PORT SECONDS [CONNS] [PATH]  -> one JSON line {requests, failed, errors}

const [port, seconds, conns = "64", path = "/"] = process.argv.slice(2);
const request = `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`;
const deadline = performance.now() + Number(seconds) * 1000;
let requests = 0;
let failed = 0;
const errors: Record<string, number> = {};

function once(): Promise<void> {
  return new Promise((resolve) => {
    let head = "";
    let settled = false;
    const done = (ok: boolean, why?: string) => {
      if (settled) return;
      settled = true;
      if (ok) requests++;
      else {
        failed++;
        const key = why ?? "bad response";
        errors[key] = (errors[key] ?? 0) + 1;
      }
      resolve();
    };
    Bun.connect({
      hostname: "127.0.0.1",
      port: Number(port),
      socket: {
        open(socket) {
          socket.write(request);
        },
        data(_socket, chunk) {
          if (head.length < 16) head += chunk.toString("latin1", 0, 16);
        },
        close() {
          done(/^HTTP\/1\.[01] 2\d\d/.test(head), head ? undefined : "closed without a response");
        },
        error(_socket, error) {
          done(false, (error as { code?: string }).code ?? error.message);
        },
        connectError(_socket, error) {
          done(false, `connect: ${(error as { code?: string }).code ?? error.message}`);
        },
      },
    }).catch((error: { code?: string; message: string }) =>
      done(false, `connect: ${error.code ?? error.message}`),
    );
  });
}

async function loop(): Promise<void> {
  while (performance.now() < deadline) await once();
}

await Promise.all(Array.from({ length: Number(conns) }, loop));
console.log(JSON.stringify({ requests, failed, errors }));
