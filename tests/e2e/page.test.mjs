// The upload page (web/) in real Chromium against the real server: refused files are refused
// before any request, a large disk-backed file arrives intact with the renderer's memory flat,
// and uploads survive a server crash, a page reload, pause/resume; cancel removes the upload.
// Saves a screenshot of the page mid-upload to artifacts/page.png.
//
// `SLUICE_LONG=1` makes the large file 2 GiB (default 256 MiB).

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdir, rm, stat } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { GiB, LONG, MiB, randomFile, scratchDir, sha256File } from '../interop/helpers.mjs'
import {
  Server, artifacts, ensureWebPackage, launchChromium, openPage, recordRequests, rendererRss, repo, row,
  rowFraction, sleep, waitState,
} from './lib.mjs'

const POLICY = `# tests/e2e/page.test.mjs
max_file_size = "3 GiB"
min_file_size = 1
max_chunk_size = "4 MiB"
allowed_types = ["application/pdf", "text/plain", "application/octet-stream"]
allowed_extensions = ["pdf", "txt", "bin"]
`
const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]

let browser
let dir

before(async () => {
  ensureWebPackage()
  dir = await scratchDir()
  browser = await launchChromium()
})

after(async () => {
  await browser?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

/** Runs `fn` with a fresh server and page; always cleans up. */
async function withPage(fn, opts) {
  const server = await Server.create(POLICY)
  let context
  try {
    const opened = await openPage(browser, server.origin, opts)
    context = opened.context
    await fn({ server, page: opened.page, context })
  } catch (err) {
    err.message += `\n--- server log tail ---\n${server.log.slice(-3000)}`
    throw err
  } finally {
    await context?.close()
    await server.stop()
  }
}

/** Drops in-page files `{name, bytes | text}` on the drop zone, as a drag and drop would. */
function dropFiles(page, files) {
  return page.evaluate((files) => {
    const dt = new DataTransfer()
    for (const f of files) dt.items.add(new File([f.text ?? new Uint8Array(f.bytes)], f.name))
    const zone = document.getElementById('drop')
    for (const type of ['dragenter', 'dragover', 'drop']) {
      zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }))
    }
  }, files)
}

/** Drops a disk-backed file: set on a helper input, moved into a DataTransfer (no copy). */
async function dropDiskFile(page, path) {
  await page.evaluate(() => {
    const input = Object.assign(document.createElement('input'), { type: 'file', id: 'e2e-helper', hidden: true })
    document.body.append(input)
  })
  await page.setInputFiles('#e2e-helper', path)
  await page.evaluate(() => {
    const dt = new DataTransfer()
    dt.items.add(document.getElementById('e2e-helper').files[0])
    const zone = document.getElementById('drop')
    for (const type of ['dragenter', 'dragover', 'drop']) {
      zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }))
    }
    document.getElementById('e2e-helper').remove()
  })
}

/** Upload bandwidth for the page, so that "mid-upload" lasts long enough to act on. */
async function throttle(context, page, bytesPerSecond) {
  const cdp = await context.newCDPSession(page)
  await cdp.send('Network.enable')
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: bytesPerSecond,
  })
  return cdp
}

/** Records every `data-state` a row goes through. */
function watchStates(page) {
  return page.evaluate(() => {
    window.__states = {}
    new MutationObserver((records) => {
      for (const r of records) {
        const li = r.target
        const name = li.querySelector?.('.file-name')?.textContent
        if (!name || !li.dataset.state) continue
        const seen = (window.__states[name] ||= [])
        if (seen[seen.length - 1] !== li.dataset.state) seen.push(li.dataset.state)
      }
    }).observe(document.getElementById('files'), { attributes: true, attributeFilter: ['data-state'], subtree: true })
  })
}
const statesOf = (page, name) => page.evaluate((n) => window.__states[n] || [], name)

const urlOf = async (page, name) => {
  const url = await row(page, name).getAttribute('data-url')
  assert.ok(url && url.includes('/files/'), `no upload URL on the row of ${name}: ${url}`)
  return url
}

const verdictOf = (page, name) => row(page, name).locator('.verdict').innerText()

/** Waits until the server's offset for `url` stops moving, and returns it. */
async function settledOffset(server, url) {
  let last = -1
  for (let i = 0; i < 50; i++) {
    const { offset } = await server.offset(url)
    if (offset === last) return offset
    last = offset
    await sleep(150)
  }
  return last
}

function decodeFilename(metadata) {
  const pair = (metadata || '').split(',').map((p) => p.trim().split(' ')).find(([k]) => k === 'filename')
  return pair ? Buffer.from(pair[1] || '', 'base64').toString() : null
}

test('refused files show why and the server receives no request for them', async () => {
  await withPage(async ({ server, page }) => {
    // The policy is shown in plain words, from GET /policy.
    const policyText = await page.locator('#policy-list').innerText()
    assert.match(policyText, /Up to 3\.0 GiB per file/)
    assert.match(policyText, /Only PDF documents, plain text files or unrecognised binary files/)
    assert.match(policyText, /\.pdf, \.txt or \.bin/)

    const huge = join(dir, 'huge.bin')
    execFileSync('truncate', ['-s', String(4 * GiB), huge]) // sparse: nothing written, only 8 KiB read
    await sleep(300) // let the page's start-up requests settle before counting
    const before = await server.requestsExceptMetrics()
    const seen = recordRequests(page)

    await dropFiles(page, [
      { name: 'photo.pdf', bytes: [...PNG, ...new Array(200).fill(7)] }, // a PNG in disguise
      { name: 'setup.exe', text: 'MZ not really a program' },
      { name: 'empty.txt', text: '' },
    ])
    await page.setInputFiles('#picker', huge)
    for (const name of ['photo.pdf', 'setup.exe', 'empty.txt', 'huge.bin']) await waitState(page, name, 'refused', 15_000)

    assert.equal(await verdictOf(page, 'photo.pdf'),
      'This file is a PNG image; only PDF documents, plain text files or unrecognised binary files are accepted.')
    assert.match(await verdictOf(page, 'setup.exe'), /^Files ending in \.exe are not accepted; accepted: \.pdf, \.txt, \.bin\.$/)
    assert.match(await verdictOf(page, 'empty.txt'), /files must be at least 1 B/)
    assert.match(await verdictOf(page, 'huge.bin'), /^This file is 4\.0 GiB; the limit is 3\.0 GiB\.$/)
    // A refused row has no transfer controls, and no progress.
    assert.deepEqual(await row(page, 'photo.pdf').locator('.actions button').allInnerTexts(), ['Remove'])
    // Screen readers hear it too (the polite live region).
    await page.waitForFunction(() => /photo\.pdf refused: This file is a PNG image/.test(document.getElementById('announcer').textContent))

    await sleep(500)
    assert.deepEqual(seen, [], 'the page sent requests for refused files')
    assert.deepEqual(await server.requestsExceptMetrics(), before, 'the server saw requests for refused files')

    // The same drop with good files in it: only those are sent (so the counting above can see requests).
    await dropFiles(page, [
      { name: 'notes.txt', text: 'meeting notes\n'.repeat(5000) },
      { name: 'photo2.pdf', bytes: [...PNG, 1, 2, 3] },
      { name: 'report.pdf', text: '%PDF-1.7\n' + 'x'.repeat(300_000) },
    ])
    await waitState(page, 'photo2.pdf', 'refused')
    await waitState(page, 'notes.txt', 'done')
    await waitState(page, 'report.pdf', 'done')
    const { counters } = await server.metrics()
    assert.equal(counters.sluice_uploads_created_total, 2)
    assert.equal(counters.sluice_uploads_completed_total, 2)
    const created = seen.filter((r) => r.method === 'POST')
    assert.deepEqual(created.map((r) => decodeFilename(r.headers['upload-metadata'])).sort(), ['notes.txt', 'report.pdf'])
    for (const r of seen) {
      const name = decodeFilename(r.headers['upload-metadata'])
      assert.ok(name === null || !name.startsWith('photo'), `a request for a refused file: ${r.method} ${r.url}`)
    }
    assert.equal((await stat(server.dataFile(await urlOf(page, 'report.pdf')))).size, 300_009)
    assert.match(await page.locator('#summary').innerText(), /7 files · 2 uploaded · 5 refused/)
  })
})

test(`a ${LONG ? '2 GiB' : '256 MiB'} disk-backed file arrives intact; the renderer's memory stays flat`, async () => {
  const size = LONG ? 2 * GiB : 256 * MiB
  const file = await randomFile(dir, 'large.bin', size)
  try {
    await withPage(async ({ server, page, context }) => {
      const cdp = await context.newCDPSession(page)
      await cdp.send('Performance.enable')
      await cdp.send('HeapProfiler.collectGarbage')
      const rss0 = sum(rendererRss())
      const heap0 = (await cdp.send('Runtime.getHeapUsage')).usedSize
      assert.ok(rss0 > 0, 'no Chromium renderer process found under this test process')

      let peakRss = rss0
      let peakHeap = heap0
      let sampling = true
      const sampler = (async () => {
        while (sampling) {
          peakRss = Math.max(peakRss, sum(rendererRss()))
          const m = await cdp.send('Performance.getMetrics').catch(() => null)
          const used = m?.metrics.find((x) => x.name === 'JSHeapUsedSize')?.value
          if (used) peakHeap = Math.max(peakHeap, used)
          await sleep(200)
        }
      })()
      // Chunk checksums are computed by the module's Web Workers, not on the page's thread.
      assert.ok(Number(await page.evaluate(() => document.body.dataset.hashWorkers)) >= 1, 'no hashing workers')
      // Every task over 50 ms on the page's thread (Long Tasks API), reported below.
      await page.evaluate(() => {
        window.longTasks = []
        new PerformanceObserver((list) => { for (const e of list.getEntries()) window.longTasks.push(e.duration) })
          .observe({ type: 'longtask' })
      })
      const t0 = Date.now()
      await dropDiskFile(page, file.path)
      await waitState(page, 'large.bin', 'done', LONG ? 600_000 : 120_000)
      const secs = (Date.now() - t0) / 1000
      sampling = false
      await sampler
      const longTasks = await page.evaluate(() => window.longTasks)

      const url = await urlOf(page, 'large.bin')
      assert.equal(await sha256File(server.dataFile(url)), file.sha256, 'stored bytes differ from the file')
      const growthMiB = (peakRss - rss0) / 1024
      const heapMiB = (peakHeap - heap0) / MiB
      console.log(`# ${size / MiB} MiB in ${secs.toFixed(1)} s (${(size / MiB / secs).toFixed(0)} MiB/s); ` +
        `renderer RSS ${(rss0 / 1024).toFixed(0)} MiB, peak +${growthMiB.toFixed(0)} MiB; JS heap peak +${heapMiB.toFixed(1)} MiB; ` +
        `main-thread tasks over 50 ms: ${longTasks.length} (longest ${Math.max(0, ...longTasks).toFixed(0)} ms)`)
      // Flat: bounded by the chunk pipeline, not by the file (2 GiB in the long run).
      assert.ok(growthMiB < 160, `renderer memory grew by ${growthMiB.toFixed(0)} MiB`)
      assert.ok(heapMiB < 48, `JS heap grew by ${heapMiB.toFixed(1)} MiB`)
      assert.match(await row(page, 'large.bin').locator('.stats').innerText(), /average/)
    })
  } finally {
    await rm(file.path, { force: true })
  }
})

const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0)

test('pause and resume; cancel makes the server forget the upload; screenshot mid-upload', async () => {
  const a = await randomFile(dir, 'site-backup.bin', 40 * MiB)
  const b = await randomFile(dir, 'raw-footage.bin', 40 * MiB)
  await withPage(async ({ server, page, context }) => {
    await watchStates(page)
    await throttle(context, page, 12 * MiB)
    await dropFiles(page, [
      { name: 'quarterly-report.pdf', text: '%PDF-1.7\n' + 'q'.repeat(2_400_000) },
      { name: 'holiday.pdf', bytes: [...PNG, 9, 9, 9] },
    ])
    await waitState(page, 'quarterly-report.pdf', 'done')
    await page.setInputFiles('#picker', [a.path, b.path])
    // Both large files on their way (concurrency 3: they upload side by side).
    await page.waitForFunction(() => ['site-backup.bin', 'raw-footage.bin'].every((n) => [...document.querySelectorAll('#files li')]
      .find((li) => li.querySelector('.file-name').textContent === n)?.querySelector('progress').value > 0.15),
    null, { timeout: 30_000, polling: 50 })

    // Pause one: the server's offset stops moving.
    await row(page, 'site-backup.bin').getByRole('button', { name: 'Pause site-backup.bin' }).click()
    await waitState(page, 'site-backup.bin', 'paused')
    const urlA = await urlOf(page, 'site-backup.bin')
    const pausedAt = await settledOffset(server, urlA)
    assert.ok(pausedAt > 0 && pausedAt < a.size, `paused at ${pausedAt}`)
    await sleep(800)
    assert.equal((await server.offset(urlA)).offset, pausedAt, 'bytes arrived while paused')
    assert.match(await verdictOf(page, 'site-backup.bin'), /Paused/)

    // The screenshot: one done, one paused, one uploading, one refused.
    assert.equal(await row(page, 'raw-footage.bin').getAttribute('data-state'), 'uploading')
    await mkdir(artifacts, { recursive: true })
    await page.screenshot({ path: join(artifacts, 'page.png'), fullPage: true })
    // (docs/images/page.png is a committed copy; refresh it by hand from artifacts/.)

    // Cancel the other mid-upload: the server forgets it.
    const urlB = await urlOf(page, 'raw-footage.bin')
    assert.ok((await rowFraction(page, 'raw-footage.bin')) < 1, 'finished before it could be cancelled')
    await row(page, 'raw-footage.bin').getByRole('button', { name: 'Cancel raw-footage.bin' }).click()
    await waitState(page, 'raw-footage.bin', 'cancelled')
    const gone = await server.offset(urlB)
    assert.ok([404, 410].includes(gone.status), `HEAD after cancel answered ${gone.status}`)
    assert.equal(existsSync(server.dataFile(urlB)), false, 'the cancelled upload is still on disk')
    assert.equal((await server.metrics()).counters.sluice_uploads_terminated_total, 1)

    // Resume the first: it continues from the server's offset and completes intact.
    await row(page, 'site-backup.bin').getByRole('button', { name: 'Resume site-backup.bin' }).click()
    await waitState(page, 'site-backup.bin', 'done')
    assert.equal(await sha256File(server.dataFile(urlA)), a.sha256)
    assert.deepEqual((await statesOf(page, 'site-backup.bin')).filter((s) => ['uploading', 'paused', 'done'].includes(s)),
      ['uploading', 'paused', 'uploading', 'done'])
  })
})

test('the server is killed mid-upload and started again: the upload completes by itself', async () => {
  const f = await randomFile(dir, 'survivor.bin', 48 * MiB)
  await withPage(async ({ server, page, context }) => {
    await watchStates(page)
    await throttle(context, page, 16 * MiB)
    const seen = recordRequests(page)
    await page.setInputFiles('#picker', f.path)
    await page.waitForFunction(() => document.querySelector('#files progress')?.value > 0.25, null, { timeout: 30_000, polling: 50 })
    await server.kill()
    await waitState(page, 'survivor.bin', 'retrying', 15_000)
    assert.match(await verdictOf(page, 'survivor.bin'), /Connection lost/)
    await sleep(1000)
    await server.start() // same port, same data dir
    await waitState(page, 'survivor.bin', 'done', 90_000)
    assert.equal(await sha256File(server.dataFile(await urlOf(page, 'survivor.bin'))), f.sha256)
    assert.equal(seen.filter((r) => r.method === 'POST').length, 1, 'the upload was started over')
    assert.ok((await statesOf(page, 'survivor.bin')).includes('retrying'))
  })
})

test('reload mid-upload, choose the file again: it resumes from the server offset', async () => {
  const f = await randomFile(dir, 'thesis-data.bin', 48 * MiB)
  await withPage(async ({ server, page, context }) => {
    await throttle(context, page, 16 * MiB)
    await page.setInputFiles('#picker', f.path)
    await page.waitForFunction(() => document.querySelector('#files progress')?.value > 0.3, null, { timeout: 30_000, polling: 50 })
    const url = await urlOf(page, 'thesis-data.bin')
    await page.reload()
    await page.waitForSelector('body[data-ready=true]')
    const offset = await settledOffset(server, url)
    assert.ok(offset > 0.25 * f.size && offset < f.size, `server offset ${offset}`)

    // The page lists the unfinished upload with what the server holds.
    await page.waitForSelector('#earlier:not([hidden])')
    const earlier = await page.locator('#earlier-list li').innerText()
    assert.match(earlier, /thesis-data\.bin/)
    assert.match(earlier, new RegExp(`${Math.floor((offset / f.size) * 100)}% of 48\\.0 MiB on the server`))

    await throttle(context, page, 16 * MiB)
    const seen = recordRequests(page)
    await page.setInputFiles('#picker', f.path)
    await waitState(page, 'thesis-data.bin', 'done')
    assert.equal(await row(page, 'thesis-data.bin').getAttribute('data-resumed-from'), String(offset))
    assert.match(await row(page, 'thesis-data.bin').locator('.note').innerText(),
      new RegExp(`^Resumed: the server already had ${Math.floor((offset / f.size) * 100)}%`))
    assert.equal(seen.filter((r) => r.method === 'POST').length, 0, 'a new upload was created')
    const firstPatch = seen.find((r) => r.method === 'PATCH')
    assert.equal(firstPatch.headers['upload-offset'], String(offset))
    assert.equal(await urlOf(page, 'thesis-data.bin'), url)
    assert.equal(await sha256File(server.dataFile(url)), f.sha256)
    assert.equal(await page.locator('#earlier').isHidden(), true)
  })
})

test('without JavaScript the plain form uploads; the page then reports the result', async () => {
  const f = await randomFile(dir, 'form-upload.bin', 3 * MiB)
  const server = await Server.create(POLICY)
  const noJs = await browser.newContext({ javaScriptEnabled: false })
  try {
    const page = await noJs.newPage()
    await page.goto(server.origin + '/')
    assert.equal(await page.locator('#drop').isVisible(), false, 'the drop zone needs JavaScript')
    assert.equal(await page.locator('#fallback').getAttribute('open'), '')
    await page.setInputFiles('#fallback-files', f.path)
    await Promise.all([page.waitForURL(/\?uploaded=1$/), page.getByRole('button', { name: 'Upload', exact: true }).click()])
    const { counters } = await server.metrics()
    assert.equal(counters.sluice_received_bytes_total >= f.size, true, JSON.stringify(counters))

    // With JavaScript, the same address shows the result once.
    const { context, page: withJs } = await openPage(browser, server.origin)
    await withJs.goto(page.url())
    await withJs.waitForSelector('body[data-ready=true]')
    assert.equal(await withJs.locator('#flash').innerText(), '1 file uploaded with the plain form.')
    assert.equal(new URL(withJs.url()).search, '')
    await context.close()
  } finally {
    await noJs.close()
    await server.stop()
  }
})

test('a large file goes in 4 parallel parts, joined by the server into the same bytes', async () => {
  const f = await randomFile(dir, 'survey-archive.bin', 72 * MiB + 4097)
  await withPage(async ({ server, page }) => {
    const seen = recordRequests(page)
    await page.setInputFiles('#picker', f.path)
    await waitState(page, 'survey-archive.bin', 'done')
    const posts = seen.filter((r) => r.method === 'POST')
    assert.equal(posts.filter((r) => r.headers['upload-concat'] === 'partial').length, 4, 'four partial uploads')
    assert.equal(posts.filter((r) => r.headers['upload-concat']?.startsWith('final;')).length, 1, 'one final upload')
    const url = await urlOf(page, 'survey-archive.bin')
    assert.equal(await sha256File(server.dataFile(url)), f.sha256, 'the joined file differs')
    assert.equal(await rowFraction(page, 'survey-archive.bin'), 1)
  })
})
