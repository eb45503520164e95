// Interop: tus-js-client's `parallelUploads` (tus concatenation) against the real `sluice`
// binary: the file is split into parts sent at once as partial uploads and joined by a final
// one. Checks the sha256 of the download, what the server recorded (HEAD on the final lists
// its parts), and resuming every part after an abort through `findPreviousUploads`.

import assert from 'node:assert/strict'
import { createReadStream } from 'node:fs'
import { readFile, rm } from 'node:fs/promises'
import { after, before, describe, test } from 'node:test'
import { Upload } from 'tus-js-client'
import { LONG, MiB, randomFile, scratchDir, sha256Body, startServer } from './helpers.mjs'

const TUS = { 'Tus-Resumable': '1.0.0' }
let server
let dir

before(async () => {
  server = await startServer()
  dir = await scratchDir()
})

after(async () => {
  try {
    await server?.stop()
  } finally {
    if (dir) await rm(dir, { recursive: true, force: true })
  }
})

/** URL storage in memory, so tus-js-client can find a previous (parallel) upload. */
function memoryStorage() {
  const entries = new Map()
  return {
    async findAllUploads() {
      return [...entries.values()]
    },
    async findUploadsByFingerprint(fingerprint) {
      return [...entries.values()].filter((e) => e.fingerprint === fingerprint)
    },
    async removeUpload(key) {
      entries.delete(key)
    },
    async addUpload(fingerprint, upload) {
      const key = `${fingerprint}-${entries.size}`
      entries.set(key, { ...upload, fingerprint, urlStorageKey: key })
      return key
    },
  }
}

function options(file, extra = {}) {
  return {
    endpoint: server.endpoint,
    parallelUploads: 4,
    retryDelays: null,
    metadata: { filename: 'parallel.bin', filetype: 'application/octet-stream' },
    fingerprint: async () => `parallel-${file.sha256}`,
    ...extra,
  }
}

function run(input, opts) {
  return new Promise((resolve, reject) => {
    const up = new Upload(input, { ...opts, onError: reject, onSuccess: () => resolve(up) })
    up.start()
  })
}

async function checkDownload(url, file) {
  const res = await fetch(url)
  assert.equal(res.status, 200, `GET ${url}`)
  const got = await sha256Body(res)
  assert.equal(got.size, file.size)
  assert.equal(got.sha256, file.sha256, 'sha256 of the joined file')
}

describe('tus-js-client parallelUploads: 4', () => {
  const sizes = LONG ? [3, 64 * MiB, 1024 * MiB] : [3, 64 * MiB]
  for (const size of sizes) {
    test(`${size} bytes in 4 parts, joined`, async () => {
      const file = await randomFile(dir, `p${size}.bin`, size)
      const input = size <= 3 ? await readFile(file.path) : createReadStream(file.path)
      const up = await run(input, options(file))
      await checkDownload(up.url, file)
      const head = await fetch(up.url, { method: 'HEAD', headers: TUS })
      assert.equal(head.status, 200)
      const concat = head.headers.get('upload-concat') ?? ''
      assert.match(concat, /^final;/, 'HEAD on the final names its parts')
      assert.equal(concat.slice('final;'.length).split(' ').length, 4)
      assert.equal(head.headers.get('upload-length'), String(size))
    })
  }

  test('every part resumes after an abort', async () => {
    const file = await randomFile(dir, 'resume.bin', 48 * MiB)
    const urlStorage = memoryStorage()
    const opts = options(file, { urlStorage, chunkSize: 2 * MiB, storeFingerprintForResuming: true })
    // Abort once about a third has been acknowledged across the parts.
    const first = await new Promise((resolve, reject) => {
      const up = new Upload(createReadStream(file.path), {
        ...opts,
        onError: reject,
        onSuccess: () => reject(new Error('finished before the abort')),
        onProgress: (sent) => {
          if (sent >= file.size / 3 && !up.aborted) {
            up.aborted = true
            up.abort().then(() => resolve(up), reject)
          }
        },
      })
      up.start()
    })
    assert.ok(first.aborted)
    const previous = await new Upload(createReadStream(file.path), opts).findPreviousUploads()
    assert.equal(previous.length, 1, 'the parallel upload was remembered')
    assert.equal(previous[0].parallelUploadUrls.length, 4)
    const offsets = await Promise.all(
      previous[0].parallelUploadUrls.map(async (url) => {
        const head = await fetch(url, { method: 'HEAD', headers: TUS })
        return Number(head.headers.get('upload-offset'))
      }),
    )
    assert.ok(offsets.some((o) => o > 0), `parts hold bytes before resuming: ${offsets}`)
    const resumed = await new Promise((resolve, reject) => {
      const up = new Upload(createReadStream(file.path), {
        ...opts,
        onError: reject,
        onSuccess: () => resolve(up),
        onBeforeRequest(req) {
          if (req.getMethod() === 'PATCH') {
            const part = previous[0].parallelUploadUrls.indexOf(req.getURL())
            if (part >= 0 && Number(req.getHeader('Upload-Offset')) < offsets[part]) {
              reject(new Error(`part ${part} was sent again from ${req.getHeader('Upload-Offset')}`))
            }
          }
        },
      })
      up.resumeFromPreviousUpload(previous[0])
      up.start()
    })
    await checkDownload(resumed.url, file)
  })
})
