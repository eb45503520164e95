// Helpers for third-party clients running in real Chromium: a test page served from its own small
// HTTP server (another origin than Sluice's, so every request to Sluice is cross-origin and needs
// CORS, as on a real site), scripts bundled from node_modules, upload throttling and request
// recording. (A page at a made-up origin fulfilled by Playwright counts as a public site, and
// Chromium's local network access rules then block its requests to 127.0.0.1.)

import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'

const testsDir = resolve(dirname(fileURLToPath(import.meta.url)), '..')

export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  })
}

/** A file from tests/node_modules, as text. */
export const nodeModule = (path) => readFileSync(join(testsDir, 'node_modules', path), 'utf8')

/** Bundles `source` (an ES module importing npm packages) into one browser script with esbuild. */
export async function bundle(source) {
  const esbuild = await import('esbuild')
  const out = await esbuild.build({
    stdin: { contents: source, resolveDir: testsDir, loader: 'js' },
    bundle: true, format: 'iife', platform: 'browser', target: 'chrome110', write: false, logLevel: 'silent',
    define: { 'process.env.NODE_ENV': '"production"' },
  })
  return out.outputFiles[0].text
}

/**
 * Serves `files` (path → JS/HTML text) on 127.0.0.1:0; `/` is a page with a file input `#file`
 * that loads `/client.js`. Returns `{ origin, close() }`.
 */
export async function servePage(files) {
  const all = {
    '/': '<!doctype html><meta charset="utf-8"><title>client</title><input type="file" id="file"><script src="/client.js"></script>',
    ...files,
  }
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname
    const body = all[path]
    if (body === undefined) return res.writeHead(404).end('not found')
    const type = path.endsWith('.js') ? 'text/javascript' : 'text/html'
    res.writeHead(200, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store' }).end(body)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => server.close(resolve)),
  }
}

/** Upload bandwidth for a page (bytes/s), so that "mid-upload" lasts long enough to act on. */
export async function throttle(context, page, bytesPerSecond) {
  const cdp = await context.newCDPSession(page)
  await cdp.send('Network.enable')
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: bytesPerSecond,
  })
}

/** Records every request a page makes to `origin` (method, URL, headers). */
export function recordRequests(page, origin) {
  const seen = []
  page.on('request', (r) => {
    if (r.url().startsWith(origin)) seen.push({ method: r.method(), url: r.url(), headers: r.headers() })
  })
  return seen
}
