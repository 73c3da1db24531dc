// The Bun app every Bun configuration serves: "/" Hello, World!, "/json" a few KB of JSON built per
// request, "/pid" this process's pid (the restart probe tells workers apart by it).
// The supervisor serves its default export; each process of the ceiling imports it (ceiling-worker.ts).
// (Run as `bun hello.ts`, Bun would serve the default export by itself, without reusePort.)

const items = Array.from({ length: 40 }, (_, i) => ({
  id: i,
  name: `item ${i}`,
  price: Math.round(i * 125) / 100,
  tags: ["alpha", "beta", "gamma"],
  inStock: i % 3 !== 0,
}));

const app = {
  fetch(req: Request): Response {
    const url = req.url;
    if (url.endsWith("/json")) return Response.json({ count: items.length, items });
    if (url.endsWith("/pid")) return new Response(`pid ${process.pid}\n`);
    return new Response("Hello, World!");
  },
};

export default app;
