// tuspy (PyPI `tuspy`, the Python tus client) against the real server: per-chunk SHA-1
// checksums, stop part-way and resume by fingerprint from its URL storage, and the aiohttp
// uploader. The Python side is tuspy_client.py.
//
// Python: `$SLUICE_TUSPY_PYTHON` if set, else a venv at target/tuspy-venv, created and filled from
// requirements.txt (exact pins) when missing or stale — the same step `cargo xtask setup` can run:
//   python3 -m venv target/tuspy-venv && target/tuspy-venv/bin/pip install -r tests/interop/requirements.txt

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { MiB, randomFile, scratchDir, sha256Body, startServer } from './helpers.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const repo = resolve(here, '../..')

/** A Python with tuspy at the pinned versions; installs it into target/tuspy-venv if needed. */
function python() {
  if (process.env.SLUICE_TUSPY_PYTHON) return process.env.SLUICE_TUSPY_PYTHON
  const venv = join(repo, 'target/tuspy-venv')
  const py = join(venv, 'bin/python')
  const requirements = readFileSync(join(here, 'requirements.txt'), 'utf8')
  const stamp = join(venv, '.sluice-requirements.stamp')
  if (existsSync(py) && existsSync(stamp) && readFileSync(stamp, 'utf8') === requirements) return py
  const opts = { stdio: ['ignore', 'inherit', 'inherit'] }
  if (!existsSync(py)) execFileSync('python3', ['-m', 'venv', venv], opts)
  execFileSync(py, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', join(here, 'requirements.txt')], opts)
  writeFileSync(stamp, requirements)
  return py
}

let server
let dir

before(async () => {
  server = await startServer()
  dir = await scratchDir()
})

after(async () => {
  await server?.stop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

const metadataOf = (head) => Object.fromEntries((head.headers.get('upload-metadata') || '').split(',').filter(Boolean)
  .map((p) => p.trim().split(' ')).map(([k, v]) => [k, Buffer.from(v || '', 'base64').toString()]))

test('tuspy uploads with checksums, resumes by fingerprint, and its async uploader works', async () => {
  const chunk = 2 * MiB
  const file = await randomFile(dir, 'tuspy-source.bin', 12 * MiB + 12345)
  const stopAt = 5 * chunk
  const out = execFileSync(python(), [join(here, 'tuspy_client.py'), server.endpoint, file.path,
    join(dir, 'urls.json'), String(stopAt), String(chunk)], { encoding: 'utf8', timeout: 120_000 })
  const r = JSON.parse(out.trim().split('\n').pop())

  // Stopped part-way, then found again by fingerprint: same URL, the server's offset.
  assert.equal(r.stopped.offset, stopAt)
  assert.equal(r.resumed.url, r.stopped.url, 'the second uploader did not find the first upload')
  assert.equal(r.resumed.offset, stopAt, 'the second uploader did not resume from the server offset')
  assert.equal(r.finished.offset, file.size)

  for (const [url, name] of [[r.finished.url, 'tuspy-upload.bin'], [r.async.url, 'tuspy-async.bin']]) {
    assert.ok(url.startsWith(server.endpoint), url)
    const head = await fetch(url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } })
    assert.equal(head.status, 200)
    assert.equal(head.headers.get('upload-offset'), String(file.size))
    assert.equal(metadataOf(head).filename, name)
    const got = await sha256Body(await fetch(url))
    assert.deepEqual(got, { sha256: file.sha256, size: file.size })
  }
  assert.notEqual(r.async.url, r.finished.url)
})
