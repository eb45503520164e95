// Uppy (@uppy/core + @uppy/tus, bundled with esbuild at test time) in real Chromium, on a page of
// another origin, uploading to the real server: a plain upload, and an upload interrupted by a
// page reload that resumes from the server's offset when the same file is added again.

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { rm } from 'node:fs/promises'
import { MiB, randomFile, scratchDir, sha256Body, startServer } from './helpers.mjs'
import { bundle, launchChromium, recordRequests, servePage, throttle } from './browser.mjs'

// The page's script: Uppy with the Tus plugin; `window.upload(endpoint)` uploads the chosen file
// and resolves with Uppy's result; `window.sent` follows Uppy's progress events.
const CLIENT = `
import Uppy from '@uppy/core'
import Tus from '@uppy/tus'
window.sent = 0
window.upload = async (endpoint) => {
  const uppy = new Uppy({ autoProceed: false })
    .use(Tus, { endpoint, chunkSize: 2 * 1024 * 1024, retryDelays: [0, 500, 1000] })
  uppy.on('upload-progress', (_file, p) => { window.sent = p.bytesUploaded })
  const file = document.getElementById('file').files[0]
  uppy.addFile({ name: file.name, type: file.type || 'application/octet-stream', data: file, source: 'Local' })
  const result = await uppy.upload()
  return {
    successful: result.successful.map((f) => ({ name: f.name, url: f.uploadURL || f.response?.uploadURL })),
    failed: result.failed.map((f) => ({ name: f.name, error: String(f.error) })),
  }
}`

let server
let browser
let dir
let site

before(async () => {
  server = await startServer()
  browser = await launchChromium()
  dir = await scratchDir()
  site = await servePage({ '/client.js': await bundle(CLIENT) })
})

after(async () => {
  await browser?.close()
  await site?.close()
  await server?.stop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

async function openClientPage() {
  const context = await browser.newContext()
  const page = await context.newPage()
  page.on('pageerror', (e) => console.error('page error:', e))
  await page.goto(`${site.origin}/`)
  return { context, page }
}

const head = (url) => fetch(url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } })

test('Uppy uploads a file to Sluice', async () => {
  const file = await randomFile(dir, 'uppy-plain.bin', 5 * MiB + 3)
  const { context, page } = await openClientPage()
  try {
    await page.setInputFiles('#file', file.path)
    const result = await page.evaluate((e) => window.upload(e), server.endpoint)
    assert.deepEqual(result.failed, [])
    assert.equal(result.successful.length, 1)
    const url = result.successful[0].url
    assert.ok(url.startsWith(server.endpoint), url)
    const h = await head(url)
    assert.equal(h.headers.get('upload-offset'), String(file.size))
    assert.match(h.headers.get('upload-metadata'), new RegExp(`filename ${Buffer.from('uppy-plain.bin').toString('base64')}`))
    assert.deepEqual(await sha256Body(await fetch(url)), { sha256: file.sha256, size: file.size })
  } finally {
    await context.close()
  }
})

test('Uppy resumes after a page reload from the server offset', async () => {
  const file = await randomFile(dir, 'uppy-resume.bin', 24 * MiB + 99)
  const { context, page } = await openClientPage()
  try {
    await throttle(context, page, 8 * MiB)
    const seen = recordRequests(page, server.origin)
    await page.setInputFiles('#file', file.path)
    page.evaluate((e) => window.upload(e), server.endpoint).catch(() => {}) // cut short by the reload
    await page.waitForFunction(() => window.sent > 8 * 1024 * 1024, null, { timeout: 30_000, polling: 50 })
    const created = seen.find((r) => r.method === 'PATCH')?.url
    assert.ok(created?.startsWith(server.endpoint), 'no PATCH seen')
    await page.reload()

    // What the server holds once the interrupted request has settled.
    let offset = -1
    for (let last = -2; offset !== last; await new Promise((r) => setTimeout(r, 150))) {
      last = offset
      offset = Number((await head(created)).headers.get('upload-offset'))
    }
    assert.ok(offset > 0 && offset < file.size, `server offset ${offset}`)

    seen.length = 0
    await page.setInputFiles('#file', file.path)
    const result = await page.evaluate((e) => window.upload(e), server.endpoint)
    assert.deepEqual(result.failed, [])
    assert.equal(result.successful[0].url, created)
    assert.equal(seen.filter((r) => r.method === 'POST').length, 0, 'a new upload was created')
    assert.equal(seen.find((r) => r.method === 'PATCH')?.headers['upload-offset'], String(offset))
    assert.deepEqual(await sha256Body(await fetch(created)), { sha256: file.sha256, size: file.size })
  } finally {
    await context.close()
  }
})
