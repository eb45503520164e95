// Shared helpers for the interop tests: start the real `sluice` binary on 127.0.0.1:0 with a
// temporary data dir, make random files, hash files and HTTP bodies.

import { spawn } from 'node:child_process'
import { createHash, randomFillSync } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const KiB = 1024
export const MiB = 1024 * KiB
export const GiB = 1024 * MiB

/** `SLUICE_LONG=1` (set by `cargo xtask test --long`) enables the long campaigns. */
export const LONG = process.env.SLUICE_LONG === '1'

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

/** The server binary: `$SLUICE_BIN`, else the release build of this checkout. */
export const SLUICE_BIN = process.env.SLUICE_BIN || join(repo, 'target/release/sluice')

/** The policy the interop tests run under: large enough for every file they send. */
export const INTEROP_POLICY = `# Written by tests/interop/helpers.mjs
max_file_size = "16 GiB"
max_chunk_size = "16 GiB"
allowed_types = []
checksum = "optional"
`

/**
 * Starts `sluice serve --listen 127.0.0.1:0` on a fresh data dir and waits for its
 * `listening on http://HOST:PORT` line. Returns `{ origin, endpoint, dataDir, stop, stderr }`;
 * `stop()` kills the process and removes the data dir (call it from an `after` hook).
 */
export async function startServer({ policy = INTEROP_POLICY, timeoutMs = 20_000 } = {}) {
  const dataDir = await mkdtemp(join(tmpdir(), 'sluice-interop-data-'))
  const policyFile = join(dataDir, '..', `${dataDir.split('/').pop()}.policy.toml`)
  await writeFile(policyFile, policy)
  const args = ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--policy', policyFile]
  const child = spawn(SLUICE_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  // Never leave a server behind, whatever happens to this process.
  const killOnExit = () => child.kill('SIGKILL')
  process.on('exit', killOnExit)

  let stderr = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (s) => {
    stderr = (stderr + s).slice(-20_000)
  })
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))

  const cleanUp = async () => {
    process.off('exit', killOnExit)
    await rm(dataDir, { recursive: true, force: true })
    await rm(policyFile, { force: true })
  }

  const listening = new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => fail(new Error(`no listening line within ${timeoutMs} ms`)), timeoutMs)
    const fail = (err) => {
      clearTimeout(timer)
      child.kill('SIGKILL')
      reject(new Error(`${SLUICE_BIN} ${args.join(' ')}: ${err.message}\nstdout: ${out}\nstderr: ${stderr}`))
    }
    const early = (code, signal) => fail(new Error(`exited early (code ${code}, signal ${signal})`))
    child.once('error', fail)
    child.once('exit', early)
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (s) => {
      if (out.includes('\n')) return // drain the rest
      out += s
      const nl = out.indexOf('\n')
      if (nl < 0) return
      const first = out.slice(0, nl).trim()
      const m = /^listening on (http:\/\/[^\s/]+)\/?$/.exec(first)
      clearTimeout(timer)
      if (!m) return fail(new Error(`unexpected first stdout line ${JSON.stringify(first)}`))
      child.off('exit', early)
      child.off('error', fail)
      resolve(m[1])
    })
  })
  let origin
  try {
    origin = await listening
  } catch (err) {
    await cleanUp()
    throw err
  }

  return {
    origin,
    endpoint: `${origin}/files/`,
    dataDir,
    child,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
        await exited
        clearTimeout(timer)
      }
      await cleanUp()
    },
  }
}

/** A fresh temp dir for test files. */
export function scratchDir() {
  return mkdtemp(join(tmpdir(), 'sluice-interop-files-'))
}

/** Writes `size` random bytes to `dir/name`; returns `{ path, size, sha256 }`. */
export async function randomFile(dir, name, size) {
  const path = join(dir, name)
  const hash = createHash('sha256')
  const fh = await open(path, 'w')
  try {
    const buf = Buffer.alloc(Math.min(size, 8 * MiB))
    for (let left = size; left > 0; ) {
      const n = Math.min(left, buf.length)
      const chunk = buf.subarray(0, n)
      randomFillSync(chunk)
      hash.update(chunk)
      await fh.write(chunk, 0, n)
      left -= n
    }
  } finally {
    await fh.close()
  }
  return { path, size, sha256: hash.digest('hex') }
}

/** sha256 (hex) of a file, streamed. */
export async function sha256File(path) {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path, { highWaterMark: 1 * MiB })) hash.update(chunk)
  return hash.digest('hex')
}

/** sha256 (hex) and length of a fetch Response body, streamed. */
export async function sha256Body(res) {
  const hash = createHash('sha256')
  let size = 0
  if (res.body) {
    for await (const chunk of res.body) {
      hash.update(chunk)
      size += chunk.length
    }
  }
  return { sha256: hash.digest('hex'), size }
}

/** A short description of a response for assertion messages. */
export async function explain(res) {
  const headers = [...res.headers].map(([k, v]) => `${k}: ${v}`).join(', ')
  let body = ''
  try {
    body = (await res.text()).slice(0, 500)
  } catch {}
  return `${res.status} [${headers}] ${body}`
}
