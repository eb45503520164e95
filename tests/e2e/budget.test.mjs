// The memory budget seen from the browser: with room for one streaming upload, a second one is
// answered 503 + Retry-After, and the browser module's own retry finishes it once the first is
// done. Nothing here retries by hand.

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { rm } from 'node:fs/promises'
import { MiB, randomFile, scratchDir, sha256File } from '../interop/helpers.mjs'
import { ensureWebPackage, launchChromium, openPage, Server, waitState } from './lib.mjs'

// 640 KiB = one streaming upload (256 KiB of write buffers + 384 KiB of actix buffers).
const POLICY = 'max_file_size = "1 GiB"\n'
let server
let browser
let files

before(async () => {
  ensureWebPackage()
  server = await Server.create(POLICY, { args: ['--memory-budget', '640 KiB'] })
  browser = await launchChromium()
  files = await scratchDir()
})

after(async () => {
  await browser?.close()
  await server?.stop()
  await rm(files, { recursive: true, force: true })
})

/** Starts a PATCH of `total` bytes, sends `sent` of them and holds the connection open. */
async function holdTheBudget(total, sent) {
  const created = await fetch(server.endpoint, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': String(total) } })
  const path = new URL(created.headers.get('location')).pathname
  const { hostname, port } = new URL(server.origin)
  const socket = connect(Number(port), hostname)
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.write(`PATCH ${path} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n` +
    `Content-Type: application/offset+octet-stream\r\nContent-Length: ${total}\r\n\r\n`)
  socket.write(Buffer.alloc(sent, 1))
  const answered = new Promise((resolve) => socket.once('data', (d) => resolve(d.toString())))
  return {
    finish: async () => {
      socket.write(Buffer.alloc(total - sent, 1))
      const reply = await answered
      socket.destroy()
      return reply
    },
  }
}

async function metric(name) {
  const text = await (await fetch(`${server.origin}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(name + ' '))
  return line ? Number(line.split(' ').pop()) : 0
}

async function until(what, check, timeoutMs = 20_000) {
  const end = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`never happened: ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

test('past the budget the upload waits (503 + Retry-After) and the module finishes it by itself', async () => {
  const holder = await holdTheBudget(4 * MiB, 64 * 1024)
  await until('the first upload streams', async () => (await metric('sluice_uploads_in_flight')) === 1)

  const { context, page } = await openPage(browser, server.origin)
  const file = await randomFile(files, 'waits.bin', 3 * MiB)
  await page.setInputFiles('#picker', file.path)
  await until('the page is told 503', async () => (await metric('sluice_rejections_total{reason="server_busy"}')) >= 1)
  assert.equal(await metric('sluice_uploads_completed_total'), 0)

  const first = await holder.finish()
  assert.match(first, /^HTTP\/1.1 204 /, first)
  await waitState(page, 'waits.bin', 'done', 60_000)
  const url = await page.evaluate(() => [...document.querySelectorAll('#files li.file')]
    .find((l) => l.querySelector('.file-name').textContent === 'waits.bin')?.dataset.url)
  const stored = url ? server.dataFile(url) : null
  assert.ok(stored, 'the row knows its upload URL')
  assert.equal(await sha256File(stored), file.sha256)
  await context.close()
})
