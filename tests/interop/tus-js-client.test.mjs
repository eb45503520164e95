// Interop: the real tus-js-client (Node build) against the real `sluice` binary.
//
// Uploads random files of 0 B, 1 B, 10 MiB and 300 MiB (2 GiB more with SLUICE_LONG=1), in one
// request and in 4 MiB chunks, and checks the sha256 of the stored file
// (DATA_DIR/uploads/{id}.bin) and of the `GET /files/{id}` download against the source. Then:
// creation-with-upload, creation-defer-length, resuming after an abort (by `uploadUrl` and by
// `findPreviousUploads`), termination, and a checksum mismatch sent by hand (460). The same
// client speaking the IETF resumable-uploads draft (`protocol: 'ietf-draft-03'`, interop
// version 5, and `'ietf-draft-05'`, version 6) uploads, resumes and completes too.

import assert from 'node:assert/strict'
import { createReadStream } from 'node:fs'
import { readFile, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable, Transform } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import { DefaultHttpStack, Upload } from 'tus-js-client'
import {
  GiB,
  LONG,
  MiB,
  explain,
  randomFile,
  scratchDir,
  sha256Body,
  sha256File,
  startServer,
} from './helpers.mjs'

const CHUNK = 4 * MiB
const TUS = { 'Tus-Resumable': '1.0.0' }

let server
let dir
const files = {}

before(async () => {
  server = await startServer()
  dir = await scratchDir()
  const sizes = { '0 B': 0, '1 B': 1, '10 MiB': 10 * MiB, '64 MiB': 64 * MiB, '300 MiB': 300 * MiB }
  if (LONG) sizes['2 GiB'] = 2 * GiB
  for (const [label, size] of Object.entries(sizes)) {
    files[label] = await randomFile(dir, `${label.replace(' ', '')}.bin`, size)
  }
})

after(async () => {
  try {
    await server?.stop()
  } finally {
    if (dir) await rm(dir, { recursive: true, force: true })
  }
})

/** What tus-js-client uploads: a Buffer for tiny files, an fs.ReadStream (sliced by path) else. */
async function source(file) {
  return file.size <= 1 ? await readFile(file.path) : createReadStream(file.path)
}

/**
 * Runs one tus-js-client upload to completion. Returns the Upload and every request it sent
 * (`{ method, url, offset }`). Retries are off unless the caller sets `retryDelays`, so a
 * server error fails the test at once.
 */
function upload(input, options = {}) {
  return new Promise((resolve, reject) => {
    const requests = []
    const up = new Upload(input, {
      endpoint: server.endpoint,
      retryDelays: null,
      metadata: { filename: 'interop.bin', filetype: 'application/octet-stream' },
      onBeforeRequest(req) {
        requests.push({
          method: req.getMethod(),
          url: req.getURL(),
          offset: req.getHeader('Upload-Offset'),
          interop: req.getHeader('Upload-Draft-Interop-Version'),
          tus: req.getHeader('Tus-Resumable'),
          complete: req.getHeader('Upload-Complete'),
        })
      },
      onError: (err) => reject(withServerLog(err)),
      onSuccess: () => resolve({ up, requests }),
      ...options,
    })
    up.start()
  })
}

/**
 * Starts an upload and aborts it once its bytes up to `cutAt` (an offset in the file) are on the
 * wire: a CutOffHttpStack holds the PATCH body there, so the cut is deterministic however fast
 * the machine is. Resolves with the aborted Upload.
 */
async function uploadThenAbort(input, cutAt, options = {}) {
  const stack = new CutOffHttpStack(cutAt)
  let up
  const finished = new Promise((_resolve, reject) => {
    up = new Upload(input, {
      endpoint: server.endpoint,
      chunkSize: CHUNK,
      retryDelays: null,
      metadata: { filename: 'resume.bin' },
      httpStack: stack,
      onSuccess: () => reject(new Error('the upload finished before it could be aborted')),
      onError: (err) => reject(withServerLog(err)),
      ...options,
    })
  })
  up.start()
  await Promise.race([stack.reached, finished])
  // Let the bytes before the cut reach the server, then drop the connection.
  await sleep(500)
  await up.abort()
  return up
}

/**
 * tus-js-client's Node HTTP stack, except that PATCH bodies stop (and stay stopped) at file
 * offset `cutAt`; `reached` resolves when they do.
 */
class CutOffHttpStack {
  constructor(cutAt) {
    this.inner = new DefaultHttpStack({})
    this.cutAt = cutAt
    this.reached = new Promise((resolve) => {
      this.markReached = resolve
    })
  }

  createRequest(method, url) {
    const req = this.inner.createRequest(method, url)
    if (method !== 'PATCH') return req
    const send = req.send.bind(req)
    req.send = (body) => {
      if (!(body instanceof Readable)) return send(body)
      let position = Number(req.getHeader('Upload-Offset'))
      const gate = new Transform({
        transform: (chunk, _encoding, callback) => {
          const room = this.cutAt - position
          if (room >= chunk.length) {
            position += chunk.length
            return callback(null, chunk)
          }
          // Hold: pass what fits, never call back, so the body stalls at the cut.
          if (room > 0) gate.push(chunk.subarray(0, room))
          position += Math.max(room, 0)
          this.markReached()
        },
      })
      gate.size = body.size
      body.pipe(gate)
      return send(gate)
    }
    return req
  }

  getName() {
    return 'CutOffHttpStack'
  }
}

function withServerLog(err) {
  err.message += `\n--- server stderr (tail) ---\n${server.stderr().slice(-4000)}`
  return err
}

function idOf(url) {
  return new URL(url).pathname.split('/').filter(Boolean).pop()
}

async function head(url) {
  const res = await fetch(url, { method: 'HEAD', headers: TUS })
  return { res, offset: Number(res.headers.get('upload-offset')), length: res.headers.get('upload-length') }
}

/** Checks the stored file and the download against `file`, then deletes the upload. */
async function verifyAndDelete(url, file) {
  const stored = join(server.dataDir, 'uploads', `${idOf(url)}.bin`)
  assert.equal((await stat(stored)).size, file.size, `size of ${stored}`)
  assert.equal(await sha256File(stored), file.sha256, `sha256 of ${stored}`)

  const h = await head(url)
  assert.equal(h.res.status, 200, `HEAD ${url}: ${await explain(h.res)}`)
  assert.equal(h.offset, file.size, 'HEAD Upload-Offset')
  assert.equal(h.length, String(file.size), 'HEAD Upload-Length')

  const res = await fetch(url)
  assert.equal(res.status, 200, `GET ${url}`)
  const got = await sha256Body(res)
  assert.equal(got.size, file.size, `GET ${url}: body length`)
  assert.equal(got.sha256, file.sha256, `GET ${url}: sha256 of the download`)

  // Termination, also to keep the disk free for the next test.
  const del = await fetch(url, { method: 'DELETE', headers: TUS })
  assert.equal(del.status, 204, `DELETE ${url}: ${await explain(del)}`)
  const gone = await head(url)
  assert.ok([404, 410].includes(gone.res.status), `HEAD after DELETE: ${gone.res.status}`)
  await assert.rejects(stat(stored), { code: 'ENOENT' }, `${stored} left on disk after DELETE`)
}

describe('tus-js-client uploads, sha256 of stored file and download', () => {
  const labels = ['0 B', '1 B', '10 MiB', '300 MiB', ...(LONG ? ['2 GiB'] : [])]
  for (const label of labels) {
    for (const [mode, options] of [
      ['one request', {}],
      ['4 MiB chunks', { chunkSize: CHUNK }],
    ]) {
      test(`${label}, ${mode}`, async (t) => {
        const file = files[label]
        const started = performance.now()
        const { up, requests } = await upload(await source(file), options)
        const secs = (performance.now() - started) / 1000
        if (file.size >= MiB) t.diagnostic(`${(file.size / 1e6 / secs).toFixed(0)} MB/s (${secs.toFixed(2)} s)`)
        assert.equal(requests[0].method, 'POST')
        const patches = requests.filter((r) => r.method === 'PATCH')
        const expected = file.size === 0 ? 0 : options.chunkSize ? Math.ceil(file.size / options.chunkSize) : 1
        assert.equal(patches.length, expected, 'PATCH requests')
        await verifyAndDelete(up.url, file)
      })
    }
  }

  test('10 MiB with creation-with-upload (data in the POST), 4 MiB chunks', async () => {
    const file = files['10 MiB']
    const { up, requests } = await upload(await source(file), { chunkSize: CHUNK, uploadDataDuringCreation: true })
    assert.deepEqual(
      requests.map((r) => r.method),
      ['POST', 'PATCH', 'PATCH'],
    )
    assert.equal(requests[1].offset, String(CHUNK), 'first PATCH continues after the POST body')
    await verifyAndDelete(up.url, file)
  })

  test('10 MiB from a plain stream with creation-defer-length', async () => {
    const file = files['10 MiB']
    const stream = Readable.from(createReadStream(file.path))
    const { up } = await upload(stream, { chunkSize: CHUNK, uploadLengthDeferred: true })
    await verifyAndDelete(up.url, file)
  })
})

describe('resume after abort', () => {
  const big = LONG ? '2 GiB' : '64 MiB'

  test(`${big}, 4 MiB chunks: abort mid-chunk, HEAD shows the offset, a new Upload with uploadUrl continues from it`, async (t) => {
    const file = files[big]
    const cutAt = file.size / 4 + 1.5 * MiB + 12345
    const first = await uploadThenAbort(createReadStream(file.path), cutAt)
    assert.ok(first.url, 'the aborted upload has a URL')
    const { res, offset } = await settledHead(first.url)
    assert.equal(res.status, 200)
    assert.ok(offset > 0 && offset <= cutAt, `HEAD offset after abort: ${offset} (cut at ${cutAt})`)
    t.diagnostic(`aborted at offset ${offset} of ${file.size}`)

    const { up, requests } = await upload(createReadStream(file.path), {
      uploadUrl: first.url,
      chunkSize: CHUNK,
      retryDelays: [0, 500, 1000],
    })
    assert.equal(up.url, first.url)
    assert.ok(!requests.some((r) => r.method === 'POST'), 'no new upload was created')
    const firstPatch = requests.find((r) => r.method === 'PATCH')
    assert.equal(firstPatch.offset, String(offset), 'the first PATCH starts at the server offset')
    await verifyAndDelete(up.url, file)
  })

  test('64 MiB, 4 MiB chunks: abort, then findPreviousUploads + resumeFromPreviousUpload with a URL storage', async (t) => {
    const file = files['64 MiB']
    const urlStorage = new MemoryUrlStorage()
    const options = { urlStorage, removeFingerprintOnSuccess: true }
    const cutAt = 16 * MiB + 1.5 * MiB
    const first = await uploadThenAbort(createReadStream(file.path), cutAt, options)
    const { offset } = await settledHead(first.url)
    assert.ok(offset > 0 && offset <= cutAt, `HEAD offset after abort: ${offset} (cut at ${cutAt})`)
    t.diagnostic(`aborted at offset ${offset} of ${file.size}`)

    const requests = []
    const up = new Upload(createReadStream(file.path), {
      endpoint: server.endpoint,
      chunkSize: CHUNK,
      retryDelays: [0, 500, 1000],
      onBeforeRequest(req) {
        requests.push({ method: req.getMethod(), offset: req.getHeader('Upload-Offset') })
      },
      ...options,
    })
    const previous = await up.findPreviousUploads()
    assert.equal(previous.length, 1, 'one stored upload for this file')
    assert.equal(previous[0].uploadUrl, first.url)
    up.resumeFromPreviousUpload(previous[0])
    await new Promise((resolve, reject) => {
      up.options.onSuccess = resolve
      up.options.onError = (err) => reject(withServerLog(err))
      up.start()
    })
    assert.ok(!requests.some((r) => r.method === 'POST'), 'no new upload was created')
    assert.equal(requests.find((r) => r.method === 'PATCH').offset, String(offset))
    assert.equal(urlStorage.entries.size, 0, 'removeFingerprintOnSuccess cleared the storage')
    await verifyAndDelete(up.url, file)
  })

  test('64 MiB in one request, cut off mid-body: the server keeps a consistent offset and the resume completes', async (t) => {
    const file = files['64 MiB']
    // No chunkSize: one PATCH for the whole file, so abort() cuts its body off part-way, at an
    // offset that is no multiple of any buffer size.
    const cutAt = 16 * MiB + 12345
    const first = await uploadThenAbort(createReadStream(file.path), cutAt, { chunkSize: Infinity })
    const { res, offset } = await settledHead(first.url)
    assert.equal(res.status, 200)
    t.diagnostic(`server kept ${offset} of the ${cutAt} bytes sent before the cut`)
    assert.equal(offset, cutAt, 'the server keeps every byte that arrived before the connection dropped')
    const { up, requests } = await upload(createReadStream(file.path), {
      uploadUrl: first.url,
      retryDelays: [0, 500, 1000],
    })
    assert.equal(requests.find((r) => r.method === 'PATCH').offset, String(offset))
    await verifyAndDelete(up.url, file)
  })

  test('64 MiB: abort(true) terminates the upload', async () => {
    const file = files['64 MiB']
    const up = await uploadThenAbort(createReadStream(file.path), 8 * MiB + 777)
    await up.abort(true)
    const { res } = await head(up.url)
    assert.ok([404, 410].includes(res.status), `HEAD after termination: ${res.status}`)
  })
})

describe('IETF draft: protocol ietf-draft-03 (interop version 5) and ietf-draft-05 (6)', () => {
  for (const [protocol, interop] of [
    ['ietf-draft-03', '5'],
    ['ietf-draft-05', '6'],
  ]) {
    /**
     * Every request spoke the draft at `interop`. (Which one says `Upload-Complete: ?1` is the
     * client's business: 4.3.1 reading a file in chunks ends with `?0`, and the server
     * completes the upload at its length in these versions; verifyDraftHead checks it did.)
     */
    function assertDraft(requests) {
      for (const r of requests) {
        assert.equal(r.interop, interop, `${r.method} ${r.url}: Upload-Draft-Interop-Version`)
        assert.equal(r.tus, undefined, `${r.method} ${r.url}: no Tus-Resumable in draft mode`)
      }
      assert.ok(
        requests.some((r) => r.complete === '?0'),
        'the client created the upload with Upload-Complete: ?0',
      )
    }

    for (const label of ['1 B', '10 MiB', '300 MiB', ...(LONG ? ['2 GiB'] : [])]) {
      test(`${protocol}: ${label} in 4 MiB chunks, sha256 of the stored file`, async () => {
        const file = files[label]
        const { up, requests } = await upload(await source(file), { protocol, chunkSize: CHUNK })
        assertDraft(requests)
        await verifyDraftHead(up.url, interop, file.size)
        await verifyAndDelete(up.url, file)
      })
    }

    test(`${protocol}: 0 B`, async () => {
      const file = files['0 B']
      const { up } = await upload(await source(file), { protocol })
      await verifyAndDelete(up.url, file)
    })

    test(`${protocol}: 10 MiB with data in the creation request`, async () => {
      const file = files['10 MiB']
      const { up, requests } = await upload(await source(file), {
        protocol,
        chunkSize: CHUNK,
        uploadDataDuringCreation: true,
      })
      assert.deepEqual(
        requests.map((r) => r.method),
        ['POST', 'PATCH', 'PATCH'],
      )
      assertDraft(requests)
      await verifyAndDelete(up.url, file)
    })

    test(`${protocol}: 64 MiB, abort mid-chunk, resume with uploadUrl from the HEAD offset`, async (t) => {
      const file = files['64 MiB']
      const cutAt = 16 * MiB + 1.5 * MiB + 4321
      const first = await uploadThenAbort(createReadStream(file.path), cutAt, { protocol })
      const { offset } = await settledHead(first.url)
      assert.ok(offset > 0 && offset <= cutAt, `HEAD offset after abort: ${offset} (cut at ${cutAt})`)
      t.diagnostic(`aborted at offset ${offset} of ${file.size}`)
      const draft = await fetch(first.url, { method: 'HEAD', headers: { 'Upload-Draft-Interop-Version': interop } })
      assert.equal(draft.status, 204)
      assert.equal(draft.headers.get('upload-offset'), String(offset))
      assert.equal(draft.headers.get('upload-complete'), '?0')

      const { up, requests } = await upload(createReadStream(file.path), {
        protocol,
        uploadUrl: first.url,
        chunkSize: CHUNK,
        retryDelays: [0, 500, 1000],
      })
      assert.ok(!requests.some((r) => r.method === 'POST'), 'no new upload was created')
      assert.equal(requests.find((r) => r.method === 'PATCH').offset, String(offset))
      await verifyDraftHead(up.url, interop, file.size)
      await verifyAndDelete(up.url, file)
    })
  }
})

/** A draft HEAD of a finished upload: 204, complete, every byte, never cached. */
async function verifyDraftHead(url, interop, size) {
  const res = await fetch(url, { method: 'HEAD', headers: { 'Upload-Draft-Interop-Version': interop } })
  assert.equal(res.status, 204, `draft HEAD ${url}: ${await explain(res)}`)
  assert.equal(res.headers.get('upload-complete'), '?1')
  assert.equal(res.headers.get('upload-offset'), String(size))
  assert.equal(res.headers.get('cache-control'), 'no-store')
  assert.equal(res.headers.get('upload-draft-interop-version'), interop)
  assert.equal(res.headers.get('tus-resumable'), null)
}

describe('protocol details sent by hand', () => {
  test('a PATCH whose Upload-Checksum does not match gets 460 and changes nothing', async () => {
    const body = Buffer.from('hello world')
    const created = await fetch(server.endpoint, {
      method: 'POST',
      headers: { ...TUS, 'Upload-Length': String(body.length) },
    })
    assert.equal(created.status, 201, `POST: ${await explain(created)}`)
    const url = new URL(created.headers.get('location'), server.endpoint).href

    const wrong = Buffer.alloc(32, 7).toString('base64')
    const patch = (checksum) =>
      fetch(url, {
        method: 'PATCH',
        headers: {
          ...TUS,
          'Content-Type': 'application/offset+octet-stream',
          'Upload-Offset': '0',
          'Upload-Checksum': checksum,
        },
        body,
      })
    const bad = await patch(`sha256 ${wrong}`)
    const text = await bad.text()
    assert.equal(bad.status, 460, `PATCH with a wrong sha256: ${bad.status} ${text}`)
    const err = JSON.parse(text)
    assert.equal(typeof err.code, 'string', `error body ${text}`)
    assert.equal(typeof err.message, 'string', `error body ${text}`)
    assert.equal((await head(url)).offset, 0, 'offset unchanged after 460')

    const sha1 = (await import('node:crypto')).createHash('sha1').update(body).digest('base64')
    const good = await patch(`sha1 ${sha1}`)
    assert.equal(good.status, 204, `PATCH with the right sha1: ${await explain(good)}`)
    assert.equal(good.headers.get('upload-offset'), String(body.length))
    const del = await fetch(url, { method: 'DELETE', headers: TUS })
    assert.equal(del.status, 204)
  })

  test('OPTIONS /files/ advertises tus 1.0.0, the extensions and the checksum algorithms', async () => {
    const res = await fetch(server.endpoint, { method: 'OPTIONS' })
    assert.ok([200, 204].includes(res.status), `OPTIONS: ${await explain(res)}`)
    assert.match(res.headers.get('tus-version') ?? '', /\b1\.0\.0\b/)
    const extensions = (res.headers.get('tus-extension') ?? '').split(',').map((s) => s.trim())
    for (const ext of [
      'creation',
      'creation-with-upload',
      'creation-defer-length',
      'expiration',
      'checksum',
      'termination',
    ]) {
      assert.ok(extensions.includes(ext), `Tus-Extension ${extensions} lacks ${ext}`)
    }
    const algorithms = (res.headers.get('tus-checksum-algorithm') ?? '').split(',').map((s) => s.trim())
    for (const alg of ['sha1', 'sha256', 'crc32c']) {
      assert.ok(algorithms.includes(alg), `Tus-Checksum-Algorithm ${algorithms} lacks ${alg}`)
    }
  })

  test('GET /healthz and GET /policy', async () => {
    const health = await fetch(`${server.origin}/healthz`)
    assert.equal(health.status, 200, `GET /healthz: ${await explain(health)}`)
    const res = await fetch(`${server.origin}/policy`)
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /json/)
    const policy = await res.json()
    assert.equal(policy.max_file_size, 16 * GiB, `policy ${JSON.stringify(policy)}`)
  })
})

/** HEAD until the offset stops moving (the aborted PATCH may still be draining server-side). */
async function settledHead(url) {
  let last = await head(url)
  for (let i = 0; i < 20; i++) {
    await sleep(100)
    const next = await head(url)
    if (next.res.status === last.res.status && next.offset === last.offset) return next
    last = next
  }
  return last
}

/** tus-js-client's urlStorage interface, in memory. */
class MemoryUrlStorage {
  entries = new Map()
  #next = 0
  async findAllUploads() {
    return [...this.entries].map(([key, u]) => ({ ...u, urlStorageKey: key }))
  }
  async findUploadsByFingerprint(fingerprint) {
    return (await this.findAllUploads()).filter((u) => u.urlStorageKey.startsWith(`tus::${fingerprint}::`))
  }
  async removeUpload(key) {
    this.entries.delete(key)
  }
  async addUpload(fingerprint, upload) {
    const key = `tus::${fingerprint}::${this.#next++}`
    this.entries.set(key, upload)
    return key
  }
}
