// The frameworks bench's plain (req, res) hello, from the app's side: no framework, so the rows
// `node/own` (node:http's own server) and `node/direct` (postern's Node bridge) differ by the bridge
// alone, against the framework rows, where the framework's own work rides along. Labelled with
// nodeHandler (as `import { nodeHandler } from 'postern'` does; the marker module is imported by path
// so that type-checking needs no build), since a bare two-parameter function could be a native app.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { nodeHandler } from '../../../src/app/adapters/marker.ts';

export const app = nodeHandler((req: IncomingMessage, res: ServerResponse): void => {
  if (req.method === 'GET' && req.url === '/') {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '11' });
    res.end('Hello World');
    return;
  }
  res.writeHead(404, { 'Content-Type': 'text/plain', 'Content-Length': '10' });
  res.end('Not Found\n');
});
