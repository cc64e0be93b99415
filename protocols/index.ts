// postern's protocol codecs, for tools that speak the gateway protocols themselves (test clients,
// load generators, proxies). Each protocol is a namespace: they share names like HEAD_FORM.
export * from './common/index.ts';
export * as fastcgi from './fastcgi/index.ts';
export * as scgi from './scgi/index.ts';
export * as uwsgi from './uwsgi/index.ts';
