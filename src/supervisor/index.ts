// The supervisor's public surface, for the CLI: master mode (runSupervised) and worker mode
// (runWorker). What the CLI must do in each:
//
// Master (workers > 1, or any of maxRequestsPerWorker / maxWorkerRssMiB / maxWorkerLifetimeMs /
// requestTimeoutMs > 0, since recycling and the deadline kill need a master):
//   const toSettings = (c: PosternConfig): SupervisorSettings<PosternConfig> =>
//     ({ ...c, listeners: c.listeners, workerConfig: c });   // option names match the brief's
//   const sup = await runSupervised({ ...toSettings(config),
//     loadConfig: async () => toSettings(resolveConfig(...)),   // SIGHUP re-resolves through this
//     log, onReopenLogs: () => log.reopen(), signals: io.signals });
//   const code = await sup.exited;    // 0 after SIGTERM/SIGINT; 1 when a crash loop left no worker
//   log.close(); process.exit(code);
// The master binds every listener itself (TCP, unix with socketMode, fd:N, LISTEN_FDS: do NOT
// call takeSocketActivation in the master, runSupervised reads LISTEN_* from options.env) and
// installs SIGTERM (graceful; a second one = fast), SIGINT (fast), SIGHUP (reload), SIGUSR1
// (reopen logs, then broadcast) unless `signals: false`. The master never loads apps.
// With `workersOnDemand` it starts no worker until a connection arrives (docs/operations.md): it
// accepts that connection itself and the worker serves it through WorkerServer.serveAccepted.
//
// Worker: each worker is the master's own script re-executed (workerEntry defaults to
// process.argv[1], process.argv.slice(2), process.execArgv) with POSTERN_WORKER_ID set. At the top
// of the CLI, before parsing anything that could fail differently in a worker:
//   if (isWorkerProcess()) {
//     const code = await runWorker<PosternConfig>(async (ctx) => {
//       const config = ctx.config;                        // the master's resolved config (structured clone)
//       const log = createOperatorLogs(config, io, { worker: ctx.workerId });  // src/operate.ts
//       ctx.onReopenLogs(() => log.reopen());
//       ctx.setMetricsSource(() => registry.snapshot());  // what collect() / a status page gets
//       const tree = ctx.track(await loadTree(config, log));  // in-flight + finished request counts
//       return startServer({ ...serverOptions(config, tree, log), listeners: ctx.listeners, worker: ctx.workerId });
//     }, { log, beforeExit: () => log.close() });
//     process.exit(code);
//   }
// ctx.listeners are `{ protocol, address: 'fd:4' … }` (inherited, already bound by the master);
// startServer must be given exactly these. runWorker ignores SIGINT/SIGHUP/SIGUSR1 (the master
// decides), treats SIGTERM or a lost master as a graceful stop, and exits the process when stopped.
export { runSupervised } from './master.ts';
export type { ListenerInfo, SignalSource, Supervisor, SupervisorOptions, SupervisorSettings, WorkerEntry } from './master.ts';
export { isWorkerProcess, runWorker } from './worker.ts';
export type { Handles, RunWorkerOptions, WorkerContext, WorkerServer } from './worker.ts';
export type { InflightReport, PoolSnapshot, WorkerInfo, WorkerListener } from './messages.ts';
export { SUPERVISOR_DEFAULTS, SUPERVISOR_ERRORS, SupervisorError, resolvePolicy, resolveWorkerCount } from './options.ts';
export type { SupervisorPolicy } from './options.ts';
