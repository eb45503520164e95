// One step of a tus-js-client upload, for tests that drive it from outside (the server
// suite's cross-instance test): uploads FILE to ENDPOINT in 1 MiB chunks, resuming UPLOAD_URL
// when given, and stops once STOP_AT bytes are acknowledged (`-`: runs to the end). Prints
// `{"url": ..., "offset": ...}` on stdout.
//
//   node tests/interop/tus-js-client-step.mjs ENDPOINT FILE STOP_AT [UPLOAD_URL]

import { createReadStream, statSync } from 'node:fs'
import { Upload } from 'tus-js-client'

const [endpoint, file, stopAt, uploadUrl] = process.argv.slice(2)
const limit = stopAt === '-' ? Infinity : Number(stopAt)
const size = statSync(file).size

const result = await new Promise((resolve, reject) => {
  const up = new Upload(createReadStream(file), {
    endpoint,
    uploadUrl: uploadUrl || null,
    uploadSize: size,
    chunkSize: 1024 * 1024,
    retryDelays: [0, 200, 500],
    metadata: { filename: 'across.bin' },
    onChunkComplete(_chunk, accepted) {
      if (accepted >= limit) up.abort().then(() => resolve({ url: up.url, offset: accepted }))
    },
    onSuccess() {
      resolve({ url: up.url, offset: size })
    },
    onError(err) {
      reject(err)
    },
  })
  up.start()
})
console.log(JSON.stringify(result))
