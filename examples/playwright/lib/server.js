'use strict';
// A small local site to browse: /page/N answers after a short delay (so tabs
// stay open a while and overlap), with a title and a link or two.  Loopback
// only.
const http = require('node:http');

function page(n, delayMs) {
  return `<!doctype html><html><head><title>Page ${n}</title></head>
<body><h1 id="heading">Page ${n}</h1>
<p id="served">served after ${delayMs} ms</p>
<a id="next" href="/page/${n + 1}">next</a>
<script>document.body.dataset.ready = 'yes';</script>
</body></html>`;
}

/** Start the site on 127.0.0.1 (port 0: any free port).  Resolves to
 * { url, close() }. */
function startServer({ port = 0, delayMs = 150 } = {}) {
  let served = 0;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const m = /^\/page\/(\d+)$/.exec(url.pathname);
    if (!m) {
      res.writeHead(url.pathname === '/favicon.ico' ? 204 : 404);
      res.end();
      return;
    }
    const wait = Number(url.searchParams.get('delay') ?? delayMs);
    setTimeout(() => {
      served++;
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(page(Number(m[1]), wait));
    }, wait);
  });
  server.keepAliveTimeout = 1000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const { port: actual } = server.address();
      resolve({
        url: `http://127.0.0.1:${actual}`,
        served: () => served,
        close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
      });
    });
  });
}

module.exports = { startServer };
