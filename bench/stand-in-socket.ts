// Just enough of net.Socket for postern's connections, for the in-process benches: loopback
// addresses, never needing 'drain', every other call a no-op. Subclasses watch write() and end().
import { EventEmitter } from 'node:events';

export class StandInSocket extends EventEmitter {
  readonly remoteAddress = '127.0.0.1';
  readonly remotePort = 40000;
  readonly localAddress = '127.0.0.1';
  readonly localPort = 9000;
  readonly readable = true;
  readonly writableNeedDrain = false;
  setNoDelay(): this { return this; }
  cork(): void {}
  uncork(): void {}
  pause(): this { return this; }
  resume(): this { return this; }
  end(): this { return this; }
  destroy(): this { return this; }
  write(_buf: Buffer): boolean { return true; }
}
