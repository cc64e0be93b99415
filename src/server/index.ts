// The socket side of serving: listeners, per-protocol connection glue and the server object.
export { AddressError, ADDRESS_ERROR, formatAddress, parseAddress, type ListenAddress } from './address.ts';
export { ServeContext, type ServeContextOptions, type ServeStats, type Tracked } from './context.ts';
export { SERVER_ERRORS } from './errors.ts';
export { FastCgiConnection, MPX_INPUT_CAP } from './fastcgi-connection.ts';
export { closeHttpServer, httpServerFor, serveHttpConnection } from './http-connection.ts';
export {
  createProtocolServer,
  LISTEN_ERRORS,
  ListenError,
  listenOn,
  planListeners,
  SD_LISTEN_FDS_START,
  serveConnection,
  takeSocketActivation,
  type BoundListener,
  type PlannedListener,
  type SocketActivation,
} from './listen.ts';
export { OPTION_ERROR, OptionError, parseSocketMode, resolveLimits, SERVER_DEFAULTS, type ListenerSpec, type ResolvedLimits, type ServerLimits, type ServerOptions } from './options.ts';
export { INPUT_HIGH_WATER_MARK } from './request-input.ts';
export { startServer, type PosternServer, type ServerStats } from './server.ts';
export { StreamConnection, type StreamProtocol } from './stream-connection.ts';
