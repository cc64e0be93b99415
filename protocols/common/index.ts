// Protocol-neutral pieces shared by the FastCGI, SCGI and uwsgi codecs.
export * from './errors.ts';
export * from './events.ts';
export * from './head.ts';
export * from './block.ts';
