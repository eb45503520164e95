// A third-party tus 1.0 server for the browser tests: @tus/server with its file store.
// Usage: node tus-server.mjs DATA_DIR [PORT]
// Prints `listening on http://127.0.0.1:PORT` as its first stdout line (like `sluice serve`).
import http from "node:http";
import { Server } from "@tus/server";
import { FileStore } from "@tus/file-store";

const [dir, port = "0"] = process.argv.slice(2);
if (!dir) {
  console.error("usage: node tus-server.mjs DATA_DIR [PORT]");
  process.exit(2);
}
const tus = new Server({ path: "/files", datastore: new FileStore({ directory: dir }) });
const server = http.createServer((req, res) => tus.handle(req, res));
server.listen(Number(port), "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => server.close(() => process.exit(0)));
