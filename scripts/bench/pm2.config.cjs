// PM2 cluster mode with N instances of node-app.cjs: `N=4 PORT=18100 pm2-runtime start pm2.config.cjs`.
module.exports = {
  apps: [
    {
      name: "bench",
      script: `${__dirname}/node-app.cjs`,
      exec_mode: "cluster",
      instances: Number(process.env.N ?? 2),
      env: { PORT: process.env.PORT ?? "3000", HOST: process.env.HOST ?? "0.0.0.0" },
      autorestart: true,
      min_uptime: 1000,
    },
  ],
};
