// The start-up decision applied to a configuration, from the CLI's side: which mode this process
// runs in (detect.ts), and what fd 0 mode changes in the configuration it serves.

import type { PosternConfig } from '../config/load.ts';
import { LISTENER_PROTOCOLS } from '../config/options.ts';
import { decideStart, inspectFd0, socketActivated, type Fd0, type StartMode } from './detect.ts';

/** The address a front server's socket is served on in fd 0 mode (FCGI_LISTENSOCK_FILENO). */
export const FD0_ADDRESS = 'fd:0';

/** The start mode for this configuration, environment and (by default, this process's) fd 0. */
export function startModeFor(config: PosternConfig, env: Readonly<Record<string, string | undefined>>, fd0: Fd0 = inspectFd0()): StartMode {
  return decideStart({
    listenerConfigured: LISTENER_PROTOCOLS.some((p) => config.sources[p] !== 'default'),
    socketActivated: socketActivated(env),
    cgiVariables: env['GATEWAY_INTERFACE'] !== undefined,
    fd0,
  });
}

/**
 * The configuration as fd 0 mode serves it: one FastCGI listener, fd 0, instead of the defaults;
 * and no access log on stdout (under mod_fcgid stdout is the error log; `nothing else on stdout`).
 */
export function servingFd0(config: PosternConfig): PosternConfig {
  const out: PosternConfig = { ...config, listeners: [{ protocol: 'fastcgi', address: FD0_ADDRESS }] };
  if (config.accessLog === '-') {
    const { accessLog: _dropped, ...rest } = out;
    return { ...rest, warnings: [...config.warnings, 'accessLog "-" (stdout) is off when started by a front server: give it a file'] };
  }
  return out;
}
