// The status surface for the server, supervisor and CLI: the metrics registry, the report, its
// renderings, the status/ping routes, and the `postern status` terminal view.
export { LATENCY_BUCKETS_MS, MAX_MOUNTS, Metrics, STATUS_CLASSES, isMetricsSnapshot, mergeSnapshots, quantileMs } from './metrics.ts';
export type { MergedMetrics, MetricsOptions, MetricsSnapshot, MountSnapshot, ProtocolCounts, RejectReason, StatusClass } from './metrics.ts';
export { buildStatusReport, isStatusReport } from './report.ts';
export type { MasterStatus, PoolLike, PoolWorker, StatusInput, StatusReport, WorkerStatus } from './report.ts';
export { DEFAULT_BACKLOG, parseProcNetTcp, readListenBacklog } from './backlog.ts';
export type { ListenBacklog } from './backlog.ts';
export { JSON_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE, escapeLabelValue, renderJson, renderPrometheus } from './render.ts';
export { STATUS_PATH_ERROR, StatusRoutes, dispatchWithStatus, statusFormat, statusResponse } from './endpoint.ts';
export type { StatusHttpResponse, StatusRequest, StatusRoute, StatusRoutesOptions } from './endpoint.ts';
export { STATUS_TOP_ERRORS, StatusTopError, fetchStatus, renderStatusTable, runStatusTop } from './top.ts';
export type { StatusTopOptions } from './top.ts';
