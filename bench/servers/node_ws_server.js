// Node's `ws` (bench/package.json, installed by bench/setup.sh): plain echo; broadcast by a loop
// over `client.send`, the way ws's README does it.
//
//     node bench/servers/node_ws_server.js --port 9001
//
// Same behaviour as the Python servers (bench/servers/_common.py): echo every binary message to
// its sender; `BCAST <n>` broadcasts a 1 KiB payload n times to every connected client.
// perMessageDeflate is off (ws's default for servers), as for every peer here.
"use strict";

const { WebSocketServer } = require("ws");

function arg(name, fallback) {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : fallback;
}

const host = arg("--host", "127.0.0.1");
const port = Number(arg("--port"));
if (!Number.isInteger(port)) {
  console.error("usage: node node_ws_server.js --port PORT [--host HOST]");
  process.exit(2);
}

const PAYLOAD = Buffer.alloc(1024);
for (let i = 0; i < 1024; i++) PAYLOAD[i] = i & 0xff;
const BCAST = Buffer.from("BCAST");

const wss = new WebSocketServer({ host, port, perMessageDeflate: false });

wss.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => {
    if (!isBinary) return;
    if (data.length >= 5 && data.subarray(0, 5).equals(BCAST)) {
      const n = Number(data.subarray(5).toString().trim() || "1");
      for (let i = 0; i < n; i++) {
        for (const client of wss.clients) client.send(PAYLOAD);
      }
      return;
    }
    ws.send(data);
  });
  ws.on("error", () => {});
});

wss.on("listening", () => {
  process.stdout.write(`READY ${wss.address().port}\n`);
});
