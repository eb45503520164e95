// The live status page (/status) in real Chromium during a real upload: it shows the upload in
// flight, its throughput and a rejection by reason, all from the server's own counters. Saves a
// screenshot to artifacts/status.png.

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { mkdir } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { launchChromium } from '../interop/browser.mjs'
import { startServer } from '../interop/helpers.mjs'

const artifacts = resolve(dirname(fileURLToPath(import.meta.url)), '../../artifacts')
let server
let browser

before(async () => {
  server = await startServer()
  browser = await launchChromium()
})

after(async () => {
  await browser?.close()
  await server?.stop()
})

/** Creates an upload and streams `total` bytes into it in `piece`-sized writes every `everyMs`. */
async function slowUpload(total, piece, everyMs) {
  const created = await fetch(`${server.endpoint}`, {
    method: 'POST',
    headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': String(total) },
  })
  assert.equal(created.status, 201)
  const url = new URL(created.headers.get('location'))
  return new Promise((resolveDone, reject) => {
    const req = request(url, {
      method: 'PATCH',
      headers: {
        'Tus-Resumable': '1.0.0',
        'Upload-Offset': '0',
        'Content-Type': 'application/offset+octet-stream',
        'Content-Length': String(total),
      },
    }, (res) => { res.resume(); res.on('end', () => resolveDone(res.statusCode)) })
    req.on('error', reject)
    const chunk = Buffer.alloc(piece, 7)
    let sent = 0
    const tick = () => {
      if (sent >= total) return req.end()
      req.write(chunk)
      sent += piece
      setTimeout(tick, everyMs)
    }
    tick()
  })
}

test('the status page shows an upload in flight, its throughput and rejections by reason', async () => {
  const page = await browser.newPage({ viewport: { width: 1400, height: 960 } })
  await page.goto(`${server.origin}/status`)
  await page.waitForSelector('#live:not(.stale)')

  const refused = await fetch(server.endpoint, {
    method: 'POST',
    headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': String(64 * 2 ** 40) },
  })
  assert.equal(refused.status, 413)
  const done = slowUpload(96 * 2 ** 20, 512 * 1024, 40) // ~8 s at ~12 MB/s

  await page.waitForFunction(() => document.querySelector('#t-flight').textContent === '1', null, { timeout: 15_000 })
  await page.waitForFunction(() => !/^0(\.0)? MB\/s$/.test(document.querySelector('#t-rate').textContent), null, { timeout: 15_000 })
  await page.waitForFunction(() => document.querySelector('#rejections').textContent.includes('file_too_large'), null, { timeout: 15_000 })
  assert.match(await page.textContent('#t-budget-sub'), /of a 64\.0 MiB budget/)
  // A few seconds of history on the charts make the screenshot worth reading.
  await page.waitForFunction(() => parseInt(document.querySelector('#c-mem .ago')?.textContent) >= 5, null, { timeout: 15_000 })
  await mkdir(artifacts, { recursive: true })
  await page.screenshot({ path: join(artifacts, 'status.png') })

  assert.equal(await done, 204)
  await page.waitForFunction(() => document.querySelector('#t-flight').textContent === '0', null, { timeout: 15_000 })
  assert.match(await page.textContent('#t-done'), /^1 completed/)
  await page.close()
})
