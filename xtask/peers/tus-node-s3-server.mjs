// The Node S3 peer of `cargo xtask bench`: @tus/server with @tus/s3-store, as its README starts
// it, storing into the Garage that xtask started (the same variables Sluice reads:
// SLUICE_S3_ENDPOINT, SLUICE_S3_REGION, SLUICE_TEST_S3 = s3://BUCKET, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY), on an ephemeral port of 127.0.0.1.
// Usage: node tus-node-s3-server.mjs
// Prints `listening on http://127.0.0.1:PORT` as its first stdout line (what xtask waits for).
import { Server } from "@tus/server";
import { S3Store } from "@tus/s3-store";

const env = (name) => {
  const value = process.env[name];
  if (!value) {
    console.error(`tus-node-s3-server: ${name} is not set`);
    process.exit(2);
  }
  return value;
};

const tus = new Server({
  path: "/files",
  datastore: new S3Store({
    // The store's default part size (8 MiB), as Sluice's spool parts and the plain client's.
    partSize: 8 * 1024 * 1024,
    s3ClientConfig: {
      bucket: env("SLUICE_TEST_S3").replace(/^s3:\/\//, "").split("/")[0],
      region: env("SLUICE_S3_REGION"),
      endpoint: env("SLUICE_S3_ENDPOINT"),
      forcePathStyle: true,
      credentials: { accessKeyId: env("AWS_ACCESS_KEY_ID"), secretAccessKey: env("AWS_SECRET_ACCESS_KEY") },
    },
  }),
  maxSize: 16 * 1024 ** 3,
});
const http = tus.listen({ host: "127.0.0.1", port: 0 }, () => {
  const { address, port } = http.address();
  console.log(`listening on http://${address}:${port}`);
});
http.on("error", (e) => {
  console.error(`tus-node-s3-server: ${e.message}`);
  process.exit(1);
});
