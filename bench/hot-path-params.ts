// What nginx 1.22 sends over FastCGI for a browser GET, from the benchmarks' side: the stock
// fastcgi_params plus a browser's request headers (PROTOCOLS.md B.2), 24 params, ~700 bytes.

export function nginxGetParams(uri: string, layout = 0): Array<[string, string]> {
  const q = uri.indexOf('?');
  const path = q === -1 ? uri : uri.slice(0, q);
  const fixed: Array<[string, string]> = [
    ['QUERY_STRING', q === -1 ? '' : uri.slice(q + 1)], ['REQUEST_METHOD', 'GET'], ['CONTENT_TYPE', ''], ['CONTENT_LENGTH', ''],
    ['SCRIPT_NAME', path], ['REQUEST_URI', uri], ['DOCUMENT_URI', path], ['DOCUMENT_ROOT', '/usr/share/nginx/html'],
    ['SERVER_PROTOCOL', 'HTTP/1.1'], ['REQUEST_SCHEME', 'http'], ['GATEWAY_INTERFACE', 'CGI/1.1'],
    ['SERVER_SOFTWARE', 'nginx/1.22.1'], ['REMOTE_ADDR', '127.0.0.1'], ['REMOTE_PORT', '51234'],
    ['REMOTE_USER', ''], ['SERVER_ADDR', '127.0.0.1'], ['SERVER_PORT', '8080'], ['SERVER_NAME', ''], ['REDIRECT_STATUS', '200'],
  ];
  return [...fixed, ...(CLIENT_HEADERS[layout % CLIENT_HEADERS.length] ?? [])];
}

/**
 * Request headers as three kinds of client send them, in their own order: a browser (the layout
 * above), curl, and a browser with client hints and a cookie. In turn (`bench/hot-path.ts
 * --layouts 3`), the names after nginx's fixed params change place from one request to the next,
 * which is what the by-position name caches meet with mixed clients.
 */
const CLIENT_HEADERS: ReadonlyArray<Array<[string, string]>> = [
  [
    ['HTTP_HOST', '127.0.0.1:8080'],
    ['HTTP_USER_AGENT', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36'],
    ['HTTP_ACCEPT', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'],
    ['HTTP_ACCEPT_LANGUAGE', 'en-US,en;q=0.9'], ['HTTP_ACCEPT_ENCODING', 'gzip, deflate, br'],
  ],
  [['HTTP_HOST', '127.0.0.1:8080'], ['HTTP_USER_AGENT', 'curl/7.88.1'], ['HTTP_ACCEPT', '*/*']],
  [
    ['HTTP_HOST', '127.0.0.1:8080'], ['HTTP_CONNECTION', 'keep-alive'], ['HTTP_SEC_CH_UA', '"Chromium";v="126", "Not.A/Brand";v="24"'],
    ['HTTP_SEC_CH_UA_MOBILE', '?0'], ['HTTP_SEC_CH_UA_PLATFORM', '"Linux"'], ['HTTP_UPGRADE_INSECURE_REQUESTS', '1'],
    ['HTTP_USER_AGENT', 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15'],
    ['HTTP_ACCEPT', 'text/html,application/xhtml+xml'], ['HTTP_SEC_FETCH_SITE', 'none'], ['HTTP_SEC_FETCH_MODE', 'navigate'],
    ['HTTP_ACCEPT_ENCODING', 'gzip, deflate, br, zstd'], ['HTTP_ACCEPT_LANGUAGE', 'de-DE,de;q=0.9'], ['HTTP_COOKIE', 'session=abc123; theme=dark'],
  ],
];

/**
 * The headers of a client layout as it sends them over HTTP (`HTTP_SEC_CH_UA` → `Sec-Ch-Ua`), Host
 * left out (the load generator sets it): `npm run bench -- --client browser` sends layout 2's.
 */
export function clientHttpHeaders(layout: number): Array<[string, string]> {
  const fields = CLIENT_HEADERS[layout % CLIENT_HEADERS.length] ?? [];
  return fields.filter(([name]) => name !== 'HTTP_HOST').map(([name, value]) => [
    name.slice(5).toLowerCase().split('_').map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join('-'), value,
  ]);
}
