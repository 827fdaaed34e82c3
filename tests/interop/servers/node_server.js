// The Node.js server of the interop matrix (run by tests/interop/servers/node.py).
// Usage: node node_server.js CONFIG.json, with keys http, h2c, https (ports), cert, key,
// root (directory of static files), keepaliveRequests, idleTimeoutMs, maxConcurrentStreams.
// HTTP/1.1 comes from node:http and node:https, HTTP/2 (h2c by prior knowledge, and TLS
// with ALPN h2 or http/1.1) from node:http2. One handler serves them all: GET of a file in
// root, and POST /upload, which reads the whole body and answers its length and SHA-256.
"use strict";
const crypto = require("node:crypto");
const fs = require("node:fs");
const http = require("node:http");
const http2 = require("node:http2");
const path = require("node:path");

const config = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const files = new Map();
for (const name of fs.readdirSync(config.root)) {
  files.set("/" + name, fs.readFileSync(path.join(config.root, name)));
}

function handle(request, response) {
  if (request.method === "POST" && request.url === "/upload") {
    const hash = crypto.createHash("sha256");
    let length = 0;
    request.on("data", (chunk) => {
      hash.update(chunk);
      length += chunk.length;
    });
    request.on("end", () => {
      response.writeHead(200, { "content-type": "text/plain" });
      response.end(`received ${length} bytes, sha256 ${hash.digest("hex")}\n`);
    });
    return;
  }
  const body = files.get(request.url);
  if (request.method !== "GET" || body === undefined) {
    response.writeHead(404, { "content-type": "text/plain" });
    response.end("not found\n");
    return;
  }
  response.writeHead(200, { "content-type": "application/octet-stream" });
  response.end(body);
}

// HTTP/1.1: node closes a connection after keepAliveTimeout idle and, with
// maxRequestsPerSocket, answers the last request with "Connection: close".
function tuneHttp1(server) {
  server.keepAliveTimeout = config.idleTimeoutMs;
  server.maxRequestsPerSocket = config.keepaliveRequests;
  return server;
}

// HTTP/2: node has no per-session request limit, so count the streams and send GOAWAY
// with node's own session.close() (GOAWAY, then the open streams finish) once the limit
// is reached; an idle session is closed the same way after idleTimeoutMs.
function tuneHttp2(server) {
  server.on("session", (session) => {
    let streams = 0;
    session.setTimeout(config.idleTimeoutMs, () => session.close());
    session.on("stream", () => {
      streams += 1;
      if (streams >= config.keepaliveRequests) session.close();
    });
  });
  return server;
}

const settings = { maxConcurrentStreams: config.maxConcurrentStreams };
tuneHttp1(http.createServer(handle)).listen(config.http, "127.0.0.1");
tuneHttp2(http2.createServer({ settings }, handle)).listen(config.h2c, "127.0.0.1");
const secure = http2.createSecureServer(
  {
    cert: fs.readFileSync(config.cert),
    key: fs.readFileSync(config.key),
    allowHTTP1: true,
    settings,
  },
  handle,
);
tuneHttp1(tuneHttp2(secure)).listen(config.https, "127.0.0.1");
process.on("SIGTERM", () => process.exit(0));
