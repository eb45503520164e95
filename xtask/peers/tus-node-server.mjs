// The Node peer of `cargo xtask bench --peers`: @tus/server with @tus/file-store, as its README
// starts it, on an ephemeral port of 127.0.0.1.
// Usage: node tus-node-server.mjs DATA_DIR
// Prints `listening on http://127.0.0.1:PORT` as its first stdout line (what xtask waits for).
import { Server } from "@tus/server";
import { FileStore } from "@tus/file-store";

const directory = process.argv[2];
if (!directory) {
  console.error("usage: node tus-node-server.mjs DATA_DIR");
  process.exit(2);
}

const tus = new Server({
  path: "/files",
  datastore: new FileStore({ directory }),
  // Same as Sluice's bench policy: files up to 16 GiB.
  maxSize: 16 * 1024 ** 3,
});
const http = tus.listen({ host: "127.0.0.1", port: 0 }, () => {
  const { address, port } = http.address();
  console.log(`listening on http://${address}:${port}`);
});
http.on("error", (e) => {
  console.error(`tus-node-server: ${e.message}`);
  process.exit(1);
});
