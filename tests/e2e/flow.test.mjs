// The real Flow.js and Resumable.js libraries in Chromium upload to Sluice's /flow endpoint:
// several chunks, testChunks on, three at a time; the stored file's sha256 matches; a second
// upload of the same file is answered by test chunks without resending any data.

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { launchChromium, repo, Server } from './lib.mjs'
import { MiB, randomFile, scratchDir, sha256File } from '../interop/helpers.mjs'

const POLICY = 'max_file_size = "1 GiB"\nmax_chunk_size = "8 MiB"\n'
const PAGE = `<!doctype html><meta charset=utf-8><title>chunk libraries</title>
<input type=file id=pick>
<script src="flow.js"></script><script src="resumable.js"></script>
<script>
// Uploads the chosen file with Flow.js or Resumable.js; resolves with the last server message.
window.upload = (library, chunkSize) => new Promise((resolve, reject) => {
  const options = { target: '/flow', chunkSize, testChunks: true, simultaneousUploads: 3, maxChunkRetries: 0 }
  const uploader = library === 'flow' ? new Flow(options) : new Resumable(options)
  uploader.on('fileSuccess', (file, message) => resolve(message))
  uploader.on('fileError', (file, message) => reject(new Error(String(message))))
  uploader.on('fileAdded', () => setTimeout(() => uploader.upload(), 0))
  uploader.addFile(document.getElementById('pick').files[0])
})
</script>`

let server
let browser
let files
let web

before(async () => {
  web = await mkdtemp(join(tmpdir(), 'sluice-chunk-libs-'))
  await writeFile(join(web, 'index.html'), PAGE)
  await copyFile(join(repo, 'tests/node_modules/@flowjs/flow.js/dist/flow.js'), join(web, 'flow.js'))
  await copyFile(join(repo, 'tests/node_modules/resumablejs/resumable.js'), join(web, 'resumable.js'))
  server = await Server.create(POLICY, { web })
  browser = await launchChromium()
  files = await scratchDir()
})

after(async () => {
  await browser?.close()
  await server?.stop()
  await rm(web, { recursive: true, force: true })
  await rm(files, { recursive: true, force: true })
})

for (const library of ['flow', 'resumable']) {
  test(`${library}: a multi-chunk file arrives intact, and a second upload resends nothing`, async () => {
    const page = await browser.newPage()
    page.on('pageerror', (e) => console.error('page error:', e))
    const requests = []
    page.on('request', (r) => { if (new URL(r.url()).pathname === '/flow') requests.push(r.method()) })
    await page.goto(`${server.origin}/`)
    const file = await randomFile(files, `${library}.bin`, 5 * MiB + 12345) // 5 chunks, the last one longer
    await page.setInputFiles('#pick', file.path)

    const message = JSON.parse(await page.evaluate(([l, size]) => window.upload(l, size), [library, MiB]))
    assert.equal(message.size, file.size, JSON.stringify(message))
    assert.equal(message.sha256, file.sha256)
    assert.equal(message.name, `${library}.bin`)
    assert.equal(await sha256File(join(server.dataDir, 'uploads', `${message.id}.bin`)), file.sha256)
    assert.equal(requests.filter((m) => m === 'POST').length, 5, 'one POST per chunk')
    assert.equal(requests.filter((m) => m === 'GET').length, 5, 'one test chunk per chunk')

    // The same file again: every test chunk says "have it"; no data is sent.
    requests.length = 0
    await page.reload()
    await page.setInputFiles('#pick', file.path)
    await page.evaluate(([l, size]) => window.upload(l, size), [library, MiB])
    assert.equal(requests.filter((m) => m === 'POST').length, 0, `resent: ${requests}`)
    assert.ok(requests.filter((m) => m === 'GET').length >= 1)
    await page.close()
  })
}
