// Helpers for the page's end-to-end tests: a Sluice server serving `web/` that can be killed and
// started again on the same port and data dir, Chromium, the server's counters, and memory
// readings of Chromium's renderer processes.

import { spawn, execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SLUICE_BIN } from '../interop/helpers.mjs'

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
export const webDir = join(repo, 'web')
export const artifacts = join(repo, 'artifacts')

/**
 * Makes sure `web/pkg` holds the release wasm package (what the server embeds and `cargo xtask
 * run` serves). Builds it when missing with `cargo xtask build-web` (wasm-pack, npm's wasm-opt).
 */
export function ensureWebPackage() {
  if (existsSync(join(webDir, 'pkg/sluice_browser_bg.wasm')) && process.env.SLUICE_REBUILD_PKG !== '1') return
  execFileSync('cargo', ['xtask', 'build-web'], { cwd: repo, stdio: 'inherit' })
}

/**
 * A `sluice serve --web-dir web` process on a fresh data dir; `kill()` (SIGKILL) and `start()`
 * again reuse the same port and data dir, like a crashed and restarted server.
 */
export class Server {
  /** `web`: the directory served at `/` (the upload page by default; `null`: the page embedded in the binary). */
  static async create(policy, { web = webDir, args = [] } = {}) {
    const s = new Server()
    s.web = web
    s.extraArgs = args
    s.dir = await mkdtemp(join(tmpdir(), 'sluice-e2e-'))
    s.dataDir = join(s.dir, 'data')
    s.policyFile = join(s.dir, 'policy.toml')
    await writeFile(s.policyFile, policy)
    s.listen = '127.0.0.1:0'
    s.log = ''
    await s.start()
    return s
  }

  async start() {
    const args = ['serve', '--listen', this.listen, '--data-dir', this.dataDir, '--policy', this.policyFile,
      ...(this.web ? ['--web-dir', this.web] : []), ...this.extraArgs]
    // The port may still be held for a moment after a kill: retry.
    for (let attempt = 0; ; attempt++) {
      try {
        this.origin = await this.spawn(args)
        break
      } catch (err) {
        if (attempt >= 25 || this.listen.endsWith(':0')) throw err
        await sleep(200)
      }
    }
    this.listen = this.origin.replace('http://', '')
    this.endpoint = `${this.origin}/files/`
  }

  spawn(args) {
    const child = spawn(SLUICE_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    this.child = child
    const killOnExit = () => child.kill('SIGKILL')
    process.on('exit', killOnExit)
    child.once('exit', () => process.off('exit', killOnExit))
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (s) => { this.log = (this.log + s).slice(-50_000) })
    return new Promise((resolve, reject) => {
      let out = ''
      const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('no listening line in 20 s')) }, 20_000)
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`sluice exited (${code}): ${this.log.slice(-2000)}`)) })
      child.stdout.setEncoding('utf8')
      child.stdout.on('data', (s) => {
        out += s
        const m = /^listening on (http:\/\/\S+?)\/?\n/.exec(out)
        if (m) { clearTimeout(timer); resolve(m[1]) }
      })
    })
  }

  /** SIGKILL, as in a crash; resolves once the process is gone. */
  async kill() {
    const child = this.child
    if (child.exitCode !== null || child.signalCode !== null) return
    const gone = new Promise((r) => child.once('exit', r))
    child.kill('SIGKILL')
    await gone
  }

  async stop() {
    await this.kill()
    await rm(this.dir, { recursive: true, force: true })
  }

  /** Path of an upload's data file. */
  dataFile(url) {
    return join(this.dataDir, 'uploads', `${url.split('/').pop()}.bin`)
  }

  /** `sluice_requests_total` by `METHOD route status`, and the upload counters. */
  async metrics() {
    const text = await (await fetch(`${this.origin}/metrics`)).text()
    const requests = {}
    const counters = {}
    for (const line of text.split('\n')) {
      // Further labels (the protocol) are summed over.
      let m = /^sluice_requests_total\{route="([^"]*)",method="([^"]*)",status="([^"]*)"[^}]*\} (\d+)/.exec(line)
      if (m) {
        const key = `${m[2]} ${m[1]} ${m[3]}`
        requests[key] = (requests[key] ?? 0) + Number(m[4])
        continue
      }
      m = /^(sluice_uploads_\w+_total|sluice_received_bytes_total) (\d+)/.exec(line)
      if (m) counters[m[1]] = Number(m[2])
    }
    return { requests, counters }
  }

  /** Requests to anything but /metrics itself (the tests' own probes). */
  async requestsExceptMetrics() {
    const { requests } = await this.metrics()
    return Object.fromEntries(Object.entries(requests).filter(([k]) => !k.includes(' /metrics ')))
  }

  /** The server's offset for an upload (tus HEAD). */
  async offset(url) {
    const res = await fetch(url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } })
    return { status: res.status, offset: Number(res.headers.get('upload-offset')) }
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** Debian's Chromium, headless, with the flags this machine needs (one definition for all suites). */
export { launchChromium } from '../interop/browser.mjs'

/** Chromium processes started by this test process (descendants of our pid). */
function descendants() {
  const parent = new Map()
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8')
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    } catch {}
  }
  const out = []
  for (const pid of parent.keys()) {
    for (let p = parent.get(pid), n = 0; p && n < 20; p = parent.get(p), n++) {
      if (p === process.pid) { out.push(pid); break }
    }
  }
  return out
}

/** Resident memory (KiB) of each Chromium renderer we started, by pid. */
export function rendererRss() {
  const out = {}
  for (const pid of descendants()) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      if (!cmd.includes('--type=renderer')) continue
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
      if (m) out[pid] = Number(m[1])
    } catch {}
  }
  return out
}

/** Waits for the page to have connected the module and shown the policy. */
export async function openPage(browser, origin, { viewport = { width: 1280, height: 860 } } = {}) {
  const context = await browser.newContext({ viewport })
  const page = await context.newPage()
  page.on('pageerror', (e) => console.error('page error:', e))
  await page.goto(origin + '/')
  await page.waitForSelector('body[data-ready=true]', { timeout: 30_000 })
  return { context, page }
}

/** Records every request the page makes (method, URL, headers). */
export function recordRequests(page) {
  const seen = []
  page.on('request', (r) => seen.push({ method: r.method(), url: r.url(), headers: r.headers() }))
  return seen
}

/** A row of the file list, by file name. */
export const row = (page, name) => page.locator('#files li.file', { has: page.locator('.file-name', { hasText: name }) })

/** Waits for a row to reach a state (`data-state`). */
export async function waitState(page, name, states, timeout = 60_000) {
  const wanted = [].concat(states)
  await page.waitForFunction(([n, w]) => {
    const li = [...document.querySelectorAll('#files li.file')].find((l) => l.querySelector('.file-name').textContent === n)
    return li && w.includes(li.dataset.state)
  }, [name, wanted], { timeout, polling: 50 })
}

/** The row's progress value (0..1). */
export const rowFraction = (page, name) => row(page, name).locator('progress').evaluate((p) => p.value)
