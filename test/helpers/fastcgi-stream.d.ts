// Ambient types for the untyped `fastcgi-stream` 1.0.0 (CommonJS), used only as a test oracle and
// in the decoder benchmark. Written from its README and lib/ sources; only what we use.

declare module 'fastcgi-stream' {
  import type { EventEmitter } from 'node:events';

  // Types merged with the value below, so users can name them as `import('fastcgi-stream').Params`.
  namespace fastcgi {
    export type Pair = [string, string] | string;

    export interface FcgiRecord {
      readonly TYPE: number;
      getSize(): number;
      write(buffer: Buffer): void;
      read(buffer: Buffer): void;
    }

    export interface RecordClass<A extends unknown[], R extends FcgiRecord> {
      new (...args: A): R;
      readonly TYPE: number;
    }

    export interface BeginRequest extends FcgiRecord { role: number; flags: number }
    export interface EndRequest extends FcgiRecord { appStatus: number; protocolStatus: number }
    export interface Params extends FcgiRecord { params: Pair[] }
    /** Stream records: `data` is a Buffer once read, or what was given to the constructor. */
    export interface StreamRecord extends FcgiRecord { data: Buffer | string; encoding?: string }
    export interface ValuesRecord extends FcgiRecord { values: Pair[] }
    export interface UnknownType extends FcgiRecord { type: number }

    /** What FastCGIStream reads from and writes to (normally a net.Socket). */
    export interface DuplexLike {
      on(event: 'data', listener: (chunk: Buffer) => void): unknown;
      write(chunk: Buffer, callback?: () => void): boolean;
    }

    export interface FastCGIStream extends EventEmitter {
      writeRecord(requestId: number, record: FcgiRecord, callback?: () => void): boolean;
      on(event: 'record', listener: (requestId: number, record: FcgiRecord) => void): this;
    }
  }

  const fastcgi: {
    FastCGIStream: new (stream: fastcgi.DuplexLike) => fastcgi.FastCGIStream;
    records: {
      BeginRequest: fastcgi.RecordClass<[role?: number, flags?: number], fastcgi.BeginRequest> & {
        roles: { RESPONDER: number; AUTHORIZER: number; FILTER: number };
        flags: { KEEPCONN: number };
      };
      AbortRequest: fastcgi.RecordClass<[], fastcgi.FcgiRecord>;
      EndRequest: fastcgi.RecordClass<[appStatus?: number, protocolStatus?: number], fastcgi.EndRequest>;
      Params: fastcgi.RecordClass<[params?: fastcgi.Pair[]], fastcgi.Params>;
      StdIn: fastcgi.RecordClass<[data?: Buffer | string], fastcgi.StreamRecord>;
      StdOut: fastcgi.RecordClass<[data?: Buffer | string], fastcgi.StreamRecord>;
      StdErr: fastcgi.RecordClass<[data?: Buffer | string], fastcgi.StreamRecord>;
      Data: fastcgi.RecordClass<[data?: Buffer | string], fastcgi.StreamRecord>;
      GetValues: fastcgi.RecordClass<[values?: fastcgi.Pair[]], fastcgi.ValuesRecord>;
      GetValuesResult: fastcgi.RecordClass<[values?: fastcgi.Pair[]], fastcgi.ValuesRecord>;
      UnknownType: fastcgi.RecordClass<[type?: number], fastcgi.UnknownType>;
    };
    constants: {
      VERSION: number;
      HEADER_LEN: number;
      MAX_CONTENT_SIZE: number;
      MAX_PADDING_SIZE: number;
      NULL_REQUEST_ID: number;
    };
  };
  export = fastcgi;
}
