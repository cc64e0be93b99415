// What nginx 1.22 sends over FastCGI for a browser GET, from the benchmarks' side: the stock
// fastcgi_params plus a browser's request headers (PROTOCOLS.md B.2), 24 params, ~700 bytes.

export function nginxGetParams(uri: string): Array<[string, string]> {
  const q = uri.indexOf('?');
  const path = q === -1 ? uri : uri.slice(0, q);
  return [
    ['QUERY_STRING', q === -1 ? '' : uri.slice(q + 1)], ['REQUEST_METHOD', 'GET'], ['CONTENT_TYPE', ''], ['CONTENT_LENGTH', ''],
    ['SCRIPT_NAME', path], ['REQUEST_URI', uri], ['DOCUMENT_URI', path], ['DOCUMENT_ROOT', '/usr/share/nginx/html'],
    ['SERVER_PROTOCOL', 'HTTP/1.1'], ['REQUEST_SCHEME', 'http'], ['GATEWAY_INTERFACE', 'CGI/1.1'],
    ['SERVER_SOFTWARE', 'nginx/1.22.1'], ['REMOTE_ADDR', '127.0.0.1'], ['REMOTE_PORT', '51234'],
    ['REMOTE_USER', ''], ['SERVER_ADDR', '127.0.0.1'], ['SERVER_PORT', '8080'], ['SERVER_NAME', ''], ['REDIRECT_STATUS', '200'],
    ['HTTP_HOST', '127.0.0.1:8080'],
    ['HTTP_USER_AGENT', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36'],
    ['HTTP_ACCEPT', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'],
    ['HTTP_ACCEPT_LANGUAGE', 'en-US,en;q=0.9'], ['HTTP_ACCEPT_ENCODING', 'gzip, deflate, br'],
  ];
}
