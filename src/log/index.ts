// The logging surface for the rest of postern: the winston event log, the batched access log and
// its formats, and the interfaces they implement.
export type { AccessLog, AccessRecord, EventLog } from './types.ts';
export { silentLog } from './types.ts';
export { createEventLog } from './event-log.ts';
export type { EventLogFormat, EventLogOptions, LogLevel, ManagedEventLog } from './event-log.ts';
export { ACCESS_LOG_DEFAULTS, createAccessLog } from './access-log.ts';
export type { AccessLogOptions, ManagedAccessLog } from './access-log.ts';
export {
  ACCESS_FORMAT_ERROR, ACCESS_LOG_FIELDS, compileAccessFormat, jsonText, localTimeText, logText, validateAccessLogFormat,
} from './access-format.ts';
export type { AccessFormatter, AccessLogField } from './access-format.ts';
