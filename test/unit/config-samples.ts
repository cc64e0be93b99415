// One valid, non-default value per option, as text (a flag argument or an environment variable) and
// as resolved: the option-table tests set each through every layer. Typed by OptionName, so a new
// option without a sample fails the type check.
import type { OptionName } from '../../src/config/options.ts';

export interface Sample {
  /** The flag argument / environment value (booleans: the bare flag sets true). */
  readonly text: string;
  /** The value a config file would hold. */
  readonly file: unknown;
  /** The resolved value, with `cwd` standing for the directory relative paths resolve against. */
  readonly expect: (cwd: string) => unknown;
}

const same = (v: unknown) => () => v;

export const SAMPLES: { readonly [N in OptionName]: Sample } = {
  fastcgi: { text: '127.0.0.1:9001', file: ['127.0.0.1:9001'], expect: same(['127.0.0.1:9001']) },
  scgi: { text: ':4000', file: [':4000'], expect: same([':4000']) },
  uwsgi: { text: '[::1]:3031', file: ['[::1]:3031'], expect: same(['[::1]:3031']) },
  http: { text: 'fd:3', file: ['fd:3'], expect: same(['fd:3']) },
  socketMode: { text: '0600', file: '0600', expect: same('0600') },
  socketOwner: { text: 'www-data', file: 'www-data', expect: same('www-data') },
  socketGroup: { text: '33', file: 33, expect: same('33') },
  mount: {
    text: '/api=some-package#app',
    file: [{ prefix: '/api', module: 'some-package', export: 'app' }],
    expect: (cwd) => [{ prefix: '/api', module: 'some-package', export: 'app', kind: 'auto', role: 'responder', baseDir: cwd }],
  },
  debug: { text: 'true', file: true, expect: same(true) },
  trustForwardedProto: { text: 'true', file: true, expect: same(true) },
  nodeBridge: { text: 'replay', file: 'replay', expect: same('replay') },
  v8Pretenuring: { text: 'true', file: true, expect: same(true) },
  // `config` names the file itself; its own tests cover it.
  config: { text: '', file: undefined, expect: same(undefined) },
  workers: { text: '3', file: 3, expect: same(3) },
  workersOnDemand: { text: 'true', file: true, expect: same(true) },
  idleWorkerTimeoutMs: { text: '30s', file: '30s', expect: same(30_000) },
  idleTimeoutMs: { text: '5m', file: '5m', expect: same(300_000) },
  reloadOnTouch: { text: 'tmp/restart.txt', file: 'tmp/restart.txt', expect: (cwd) => `${cwd}/tmp/restart.txt` },
  heartbeatIntervalMs: { text: '500ms', file: '500ms', expect: same(500) },
  workerStartTimeoutMs: { text: '1m', file: 60000, expect: same(60000) },
  respawnDelayMs: { text: '250', file: 250, expect: same(250) },
  respawnDelayMaxMs: { text: '30s', file: '30s', expect: same(30000) },
  fastDeathMs: { text: '5s', file: 5000, expect: same(5000) },
  crashLoopDeaths: { text: '3', file: 3, expect: same(3) },
  crashLoopWindowMs: { text: '2m', file: '2m', expect: same(120000) },
  allowedClients: { text: '10.0.0.0/8', file: ['10.0.0.0/8'], expect: same(['10.0.0.0/8']) },
  allowRoot: { text: 'true', file: true, expect: same(true) },
  user: { text: 'nobody', file: 'nobody', expect: same('nobody') },
  group: { text: 'nogroup', file: 'nogroup', expect: same('nogroup') },
  maxParamsBytes: { text: '128KiB', file: '128k', expect: same(131072) },
  maxParamCount: { text: '50', file: 50, expect: same(50) },
  maxBodyBytes: { text: '1MiB', file: 1048576, expect: same(1048576) },
  maxHeadersBytes: { text: '32k', file: '32KiB', expect: same(32768) },
  maxRequestsPerConnection: { text: '8', file: 8, expect: same(8) },
  maxConnections: { text: '10', file: 10, expect: same(10) },
  maxInflightRequests: { text: '64', file: 64, expect: same(64) },
  retryAfterSeconds: { text: '30', file: 30, expect: same(30) },
  requestTimeoutMs: { text: '30s', file: '30s', expect: same(30000) },
  killGraceMs: { text: '250', file: 250, expect: same(250) },
  headerTimeoutMs: { text: '2s', file: 2000, expect: same(2000) },
  bodyIdleTimeoutMs: { text: '1m', file: '1m', expect: same(60000) },
  keepAliveTimeoutMs: { text: '1500ms', file: '1500ms', expect: same(1500) },
  writeTimeoutMs: { text: '10s', file: '10s', expect: same(10000) },
  shutdownTimeoutMs: { text: '5s', file: 5000, expect: same(5000) },
  appCloseTimeoutMs: { text: '1500ms', file: 1500, expect: same(1500) },
  maxRequestsPerWorker: { text: '1000', file: 1000, expect: same(1000) },
  maxRequestsJitter: { text: '100', file: 100, expect: same(100) },
  maxWorkerRssMiB: { text: '256', file: 256, expect: same(256) },
  maxWorkerLifetimeMs: { text: '1h', file: '1h', expect: same(3600000) },
  logLevel: { text: 'debug', file: 'debug', expect: same('debug') },
  logFormat: { text: 'json', file: 'json', expect: same('json') },
  logFile: { text: 'postern.log', file: 'postern.log', expect: (cwd) => `${cwd}/postern.log` },
  accessLog: { text: 'access.log', file: 'access.log', expect: (cwd) => `${cwd}/access.log` },
  accessLogFormat: { text: '{method} {uri} {status}', file: '{method} {uri} {status}', expect: same('{method} {uri} {status}') },
  slowRequestMs: { text: '2s', file: '2s', expect: same(2000) },
  statusPath: { text: '/status', file: '/status', expect: same('/status') },
  pingPath: { text: '/ping', file: '/ping', expect: same('/ping') },
  statusListen: { text: '127.0.0.1:9100', file: '127.0.0.1:9100', expect: same('127.0.0.1:9100') },
};
