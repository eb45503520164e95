// tus-js-client (its browser build, dist/tus.min.js) in real Chromium, on a page of another
// origin, uploading to the real server: chunked upload interrupted, page reloaded, the same file
// chosen again resumes from the server's offset via tus-js-client's localStorage fingerprint; and
// creation-with-upload with X-HTTP-Method-Override.

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { rm } from 'node:fs/promises'
import { MiB, randomFile, scratchDir, sha256Body, startServer } from './helpers.mjs'
import { launchChromium, nodeModule, recordRequests, servePage } from './browser.mjs'

let server
let browser
let dir
let site

before(async () => {
  server = await startServer()
  browser = await launchChromium()
  dir = await scratchDir()
  site = await servePage({ '/client.js': nodeModule('tus-js-client/dist/tus.min.js') + UPLOAD })
})

after(async () => {
  await browser?.close()
  await site?.close()
  await server?.stop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

// Runs in the page: uploads the chosen file with tus-js-client, resuming a previous upload of it
// if tus-js-client remembers one; `stopAt` aborts once the server has acknowledged that many bytes.
const UPLOAD = `
window.upload = (endpoint, options, stopAt) => new Promise((resolve, reject) => {
  const file = document.getElementById('file').files[0]
  const up = new tus.Upload(file, {
    endpoint, retryDelays: [0, 500, 1000], ...options,
    metadata: { filename: file.name, filetype: file.type || 'application/octet-stream' },
    onChunkComplete(_size, accepted) {
      if (stopAt && accepted >= stopAt) up.abort().then(() => resolve({ url: up.url, stoppedAt: accepted }))
    },
    onSuccess() { resolve({ url: up.url }) },
    onError(err) { reject(new Error(String(err))) },
  })
  up.findPreviousUploads().then((previous) => {
    if (previous.length) up.resumeFromPreviousUpload(previous[0])
    up.start()
  })
})`

async function openClientPage() {
  const context = await browser.newContext()
  const page = await context.newPage()
  page.on('pageerror', (e) => console.error('page error:', e))
  await page.goto(`${site.origin}/`)
  return { context, page }
}

/**
 * Uploads `file` with tus-js-client `options` until `stopAt` bytes are acknowledged, reloads the
 * page, chooses the file again, and checks the upload resumes from the server's offset (no new
 * POST) and completes intact. `checkFirst(seen, url)` looks at the first page's requests and
 * returns the offset the server holds.
 */
async function reloadAndResume(file, options, stopAt, checkFirst) {
  const { context, page } = await openClientPage()
  try {
    const seen = recordRequests(page, server.origin)
    await page.setInputFiles('#file', file.path)
    const first = await page.evaluate(([e, o, s]) => window.upload(e, o, s), [server.endpoint, options, stopAt])
    assert.ok(first.url?.startsWith(server.endpoint), JSON.stringify(first))
    const offset = await checkFirst(seen, first.url)
    assert.ok(offset >= stopAt && offset < file.size, `server offset ${offset}`)

    // A new page load: only localStorage remembers the upload.
    await page.reload()
    seen.length = 0
    await page.setInputFiles('#file', file.path)
    const second = await page.evaluate(([e, o]) => window.upload(e, o), [server.endpoint, options])
    assert.equal(second.url, first.url)
    assert.equal(seen.filter((r) => r.method === 'POST').length, 0, 'a new upload was created')
    assert.equal(seen.find((r) => r.method === 'PATCH')?.headers['upload-offset'], String(offset))
    assert.deepEqual(await sha256Body(await fetch(second.url)), { sha256: file.sha256, size: file.size })
  } finally {
    await context.close()
  }
}

test('tus-js-client in Chromium: chunked upload, reload, resume from the server offset', async () => {
  const file = await randomFile(dir, 'tus-js-browser.bin', 14 * MiB + 777)
  await reloadAndResume(file, { chunkSize: 2 * MiB }, 6 * MiB, async (seen, url) => {
    assert.equal(seen.filter((r) => r.method === 'POST').length, 1)
    const head = await fetch(url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } })
    return Number(head.headers.get('upload-offset'))
  })
})

test('tus-js-client in Chromium: creation-with-upload and X-HTTP-Method-Override', async () => {
  const file = await randomFile(dir, 'tus-js-override.bin', 3 * MiB + 5)
  const { context, page } = await openClientPage()
  try {
    const seen = recordRequests(page, server.origin)
    await page.setInputFiles('#file', file.path)
    const done = await page.evaluate(([e]) => window.upload(e, { uploadDataDuringCreation: true, overridePatchMethod: true }), [server.endpoint])
    assert.ok(done.url?.startsWith(server.endpoint))
    const posts = seen.filter((r) => r.method === 'POST')
    assert.ok(posts.length >= 1 && seen.every((r) => r.method !== 'PATCH'), seen.map((r) => r.method).join(','))
    assert.deepEqual(await sha256Body(await fetch(done.url)), { sha256: file.sha256, size: file.size })
  } finally {
    await context.close()
  }
})

// The same reload-and-resume in Chromium speaking the IETF draft: tus-js-client's
// `ietf-draft-03` sends interop version 5, `ietf-draft-05` sends 6.
for (const [protocol, interop] of [
  ['ietf-draft-03', '5'],
  ['ietf-draft-05', '6'],
]) {
  test(`tus-js-client in Chromium, ${protocol}: chunked upload, reload, resume from the server offset`, async () => {
    const file = await randomFile(dir, `tus-js-${protocol}.bin`, 10 * MiB + 333)
    await reloadAndResume(file, { protocol, chunkSize: 2 * MiB }, 4 * MiB, async (seen, url) => {
      const sent = seen.filter((r) => r.method !== 'OPTIONS')
      assert.ok(sent.length >= 2, sent.map((r) => r.method).join(','))
      for (const r of sent) {
        assert.equal(r.headers['upload-draft-interop-version'], interop, `${r.method}: interop version`)
        assert.equal(r.headers['tus-resumable'], undefined, `${r.method}: no Tus-Resumable in draft mode`)
      }
      const head = await fetch(url, { method: 'HEAD', headers: { 'Upload-Draft-Interop-Version': interop } })
      assert.equal(head.status, 204)
      assert.equal(head.headers.get('upload-complete'), '?0')
      return Number(head.headers.get('upload-offset'))
    })
  })
}

test('tus-js-client in Chromium: parallelUploads 4 (tus concatenation), joined file intact', async () => {
  const file = await randomFile(dir, 'tus-js-parallel.bin', 9 * MiB + 4321)
  const { context, page } = await openClientPage()
  try {
    const seen = recordRequests(page, server.origin)
    await page.setInputFiles('#file', file.path)
    const done = await page.evaluate(([e]) => window.upload(e, { parallelUploads: 4 }), [server.endpoint])
    const posts = seen.filter((r) => r.method === 'POST')
    assert.equal(posts.filter((r) => r.headers['upload-concat'] === 'partial').length, 4, 'four partial uploads')
    const finals = posts.filter((r) => r.headers['upload-concat']?.startsWith('final;'))
    assert.equal(finals.length, 1, 'one final upload')
    assert.equal(finals[0].headers['upload-concat'].split(' ').length, 4, 'the final names every part')
    const head = await fetch(done.url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } })
    assert.equal(head.headers.get('upload-offset'), String(file.size))
    assert.deepEqual(await sha256Body(await fetch(done.url)), { sha256: file.sha256, size: file.size })
  } finally {
    await context.close()
  }
})
