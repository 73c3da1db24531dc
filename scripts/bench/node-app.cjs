// The Node app (node cluster and PM2 cluster): same routes as hello.ts. PM2 cannot run Bun workers
// (Unitech/pm2#5777), so the Node peers serve this instead.
const http = require("node:http");

const items = Array.from({ length: 40 }, (_, i) => ({
  id: i,
  name: `item ${i}`,
  price: Math.round(i * 125) / 100,
  tags: ["alpha", "beta", "gamma"],
  inStock: i % 3 !== 0,
}));

http
  .createServer((req, res) => {
    if (req.url.endsWith("/json")) {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ count: items.length, items }));
    } else if (req.url.endsWith("/pid")) {
      res.end(`pid ${process.pid}\n`);
    } else {
      res.end("Hello, World!");
    }
  })
  .listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? "0.0.0.0");
