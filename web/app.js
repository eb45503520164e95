// The upload page. Every rule is decided by the WebAssembly module (the same Rust code the server
// runs); this file only turns its verdicts, states and progress into a page. No framework.

import init, { Client } from './pkg/sluice_browser.js'

const $ = (id) => document.getElementById(id)
const ENDPOINT = new URL('/files/', location.href).href
/** The module's localStorage prefix for "resume after reload" (crates/sluice-browser/src/fingerprint.rs). */
const RESUME_PREFIX = `sluice:v1:${ENDPOINT}|`
/** Final states: the row keeps its result and offers no more transfer controls. */
const FINAL = new Set(['done', 'failed', 'cancelled', 'refused'])

let client = null
const items = new Set()

// ---------- formatting ----------

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
function size(n) {
  let i = 0
  while (n >= 1024 && i < UNITS.length - 1) { n /= 1024; i++ }
  return i === 0 ? `${n} B` : `${n.toFixed(n < 10 ? 1 : n < 100 ? 1 : 0)} ${UNITS[i]}`
}
const speed = (bps) => `${size(Math.round(bps))}/s`
function duration(s) {
  if (!isFinite(s)) return ''
  if (s < 1) return 'less than a second'
  if (s < 60) return `${Math.round(s)} s`
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`
}
/** A policy period in words: 86400 → "24 hours". */
function period(s) {
  const plural = (n, w) => `${n} ${w}${n === 1 ? '' : 's'}`
  if (s % 86400 === 0 && s >= 2 * 86400) return plural(s / 86400, 'day')
  if (s % 3600 === 0) return plural(s / 3600, 'hour')
  if (s % 60 === 0) return plural(s / 60, 'minute')
  return plural(s, 'second')
}
function list(words, last = 'or') {
  if (words.length <= 1) return words.join('')
  return `${words.slice(0, -1).join(', ')} ${last} ${words[words.length - 1]}`
}

// Plural words for an allowed_types pattern. Mirrors sluice_core::sniff::describe_pattern, which
// the module does not export: display only, the decisions stay in the module.
const TYPE_WORDS = {
  'image/*': 'images', 'video/*': 'videos', 'audio/*': 'audio files', 'text/*': 'text files',
  'application/pdf': 'PDF documents', 'image/png': 'PNG images', 'image/jpeg': 'JPEG images',
  'image/gif': 'GIF images', 'image/webp': 'WebP images', 'text/plain': 'plain text files',
  'text/csv': 'CSV files', 'application/json': 'JSON files', 'application/zip': 'ZIP archives',
  'video/mp4': 'MP4 videos', 'application/octet-stream': 'unrecognised binary files',
}
const typeWords = (p) => TYPE_WORDS[p.trim().toLowerCase()] || `${p} files`

// Messages for the codes the plain form (POST /upload) can send back as ?error=CODE.
const FORM_ERRORS = {
  file_too_large: 'A file was larger than the limit.',
  file_too_small: 'A file was smaller than the minimum size.',
  type_not_allowed: 'A file was of a type that is not accepted.',
  extension_not_allowed: 'A file name had an extension that is not accepted.',
  invalid_filename: 'A file name was not acceptable.',
  filename_too_long: 'A file name was too long.',
  filename_required: 'A file had no name.',
  metadata_too_large: 'The form was too large.',
}

// ---------- screen-reader announcements ----------

let announceTimer = 0
const pending = []
/** Queues a message for the polite live region; bursts are joined so nothing is lost or spammed. */
function announce(text) {
  pending.push(text)
  clearTimeout(announceTimer)
  announceTimer = setTimeout(() => {
    $('announcer').textContent = pending.splice(0).join(' ')
  }, 250)
}

// ---------- the policy, in plain words ----------

function showPolicy(policy, checksum) {
  const rows = []
  let sizes = `Up to ${size(policy.max_file_size)} per file`
  if (policy.min_file_size > 1) sizes += `, at least ${size(policy.min_file_size)}`
  else if (policy.min_file_size === 1) sizes += '; empty files are refused'
  rows.push(['Size', sizes + '.'])
  const types = policy.allowed_types || []
  rows.push(['Types', types.length ? `Only ${list(types.map(typeWords))}.` : 'Any kind of file.'])
  const exts = policy.allowed_extensions || []
  if (exts.length) rows.push(['Names', `Ending in ${list(exts.map((e) => '.' + e))}.`])
  if (policy.max_filename_length && policy.max_filename_length < 255) {
    rows.push(['Names', `At most ${policy.max_filename_length} characters.`])
  }
  let batch = `Up to ${policy.max_files_per_batch} files at a time`
  if (policy.max_batch_size) batch += `, ${size(policy.max_batch_size)} in total`
  rows.push(['At once', batch + '.'])
  if (policy.upload_expiry) {
    rows.push(['Resume', `Unfinished uploads are kept for ${period(policy.upload_expiry)} after their last piece.`])
  }
  if (checksum) {
    const names = { sha1: 'SHA-1', sha256: 'SHA-256', crc32c: 'CRC-32C' }
    rows.push(['Integrity', `Every piece is verified with ${names[checksum] || checksum} on arrival.`])
  }
  const ul = $('policy-list')
  ul.replaceChildren(...rows.map(([k, v]) => {
    const li = document.createElement('li')
    li.innerHTML = '<span class="k"></span><span class="v"></span>'
    li.querySelector('.k').textContent = k
    li.querySelector('.v').textContent = v
    return li
  }))
  const hint = [`Up to ${size(policy.max_file_size)} each`]
  hint.push(types.length ? list(types.map(typeWords)) : 'any type')
  $('drop-hint').textContent = hint.join(' · ')
}

// ---------- one row per file ----------

class Item {
  constructor(file) {
    this.file = file
    this.upload = null
    this.state = 'checking'
    this.resumeNoted = false
    this.lastAnnounced = -1
    this.started = 0

    const li = (this.el = document.createElement('li'))
    li.className = 'file'
    li.innerHTML = `
      <div class="badge" aria-hidden="true"></div>
      <div class="file-main">
        <div class="file-top"><span class="file-name"></span><span class="file-size"></span></div>
        <p class="verdict">Checking…</p>
        <p class="note"></p>
        <progress max="1" value="0"></progress>
        <p class="stats"></p>
      </div>
      <div class="actions"></div>`
    this.q = (sel) => li.querySelector(sel)
    const ext = /\.([A-Za-z0-9]{1,4})$/.exec(file.name)
    this.q('.badge').textContent = ext ? ext[1] : 'file'
    this.q('.file-name').textContent = file.name
    this.q('.file-name').title = file.name
    this.q('.file-size').textContent = size(file.size)
    this.q('progress').setAttribute('aria-label', `Upload progress of ${file.name}`)
    this.setState('checking')
  }

  /** Applies the module's verdict: refused files stop here, before any request. */
  verdict(v) {
    if (!v.ok) {
      this.setState('refused')
      this.say(v.message)
      announce(`${this.file.name} refused: ${v.message}`)
      return
    }
    this.label = v.label
    this.say(`${capitalise(v.label || 'file')} · accepted`)
    this.start()
  }

  start() {
    this.resumeNoted = false
    this.last = null
    this.started = performance.now()
    this.upload = client.upload(this.file, {
      onProgress: (p) => this.progress(p),
      onStateChange: (s) => this.setState(s),
    })
    this.el.dataset.url = ''
    // The module's own state changes drive the row; the ticker picks up what has no event
    // (the resume offset once the server answered, the upload URL).
    this.ticker = setInterval(() => this.tick(), 400)
    this.upload.start().then(
      (result) => this.finish(result),
      (err) => this.fail(err),
    )
  }

  tick() {
    const u = this.upload
    if (!u) return
    if (u.url && this.el.dataset.url !== u.url) this.el.dataset.url = u.url
    if (!this.resumeNoted && u.resumedFrom != null) {
      this.resumeNoted = true
      const from = u.resumedFrom
      const pct = this.file.size ? Math.floor((from / this.file.size) * 100) : 0
      this.note(from > 0
        ? `Resumed: the server already had ${pct}% (${size(from)}), continuing from there.`
        : 'Resumed the earlier upload of this file.')
      this.el.dataset.resumedFrom = String(from)
      announce(`${this.file.name}: resuming from ${pct}%.`)
      forgetEarlier(this.file)
      this.bar(from)
    }
  }

  progress(p) {
    this.last = p
    this.bar(p.uploaded)
    this.stats(true)
    // Announce every quarter, not every chunk.
    const quarter = Math.floor(p.fraction * 4)
    if (quarter > this.lastAnnounced && quarter < 4) {
      this.lastAnnounced = quarter
      if (quarter > 0) announce(`${this.file.name}: ${quarter * 25}% uploaded.`)
    }
  }

  /** "40% · 16 MiB of 40 MiB · 7 MiB/s · 3 s left"; speed and ETA only while data flows. */
  stats(moving) {
    const p = this.last
    if (!p) return
    const parts = [`${Math.floor(p.fraction * 100)}%`, `${size(p.uploaded)} of ${size(p.total)}`]
    if (moving && p.bytesPerSecond > 0) parts.push(speed(p.bytesPerSecond))
    if (moving && p.etaSeconds != null && p.fraction < 1) parts.push(`${duration(p.etaSeconds)} left`)
    this.q('.stats').textContent = parts.join(' · ')
  }

  bar(uploaded) {
    const pg = this.q('progress')
    pg.value = this.file.size ? uploaded / this.file.size : 1
    pg.setAttribute('aria-valuetext', `${Math.floor(pg.value * 100)}%`)
  }

  finish(result) {
    this.stop()
    this.bar(this.file.size)
    const secs = (performance.now() - this.started) / 1000
    const sent = this.file.size - (result.resumedFrom || 0)
    this.setState('done')
    this.say('Uploaded')
    this.q('.stats').textContent = `${size(this.file.size)} · ${duration(secs)}` +
      (secs > 0.2 && sent > 0 ? ` · average ${speed(sent / secs)}` : '')
    this.el.dataset.url = result.url
    announce(`${this.file.name} uploaded.`)
  }

  fail(err) {
    this.stop()
    if (err && err.code === 'cancelled') {
      this.setState('cancelled')
      this.say('Cancelled; the server has forgotten it.')
      this.q('.stats').textContent = ''
      announce(`${this.file.name} cancelled.`)
      return
    }
    this.setState('failed')
    const message = (err && err.message) || String(err)
    this.say(message)
    this.el.dataset.code = (err && err.code) || ''
    announce(`${this.file.name} failed: ${message}`)
  }

  stop() {
    clearInterval(this.ticker)
    this.tick()
  }

  setState(state) {
    const old = this.state
    this.state = state
    this.el.dataset.state = state
    const words = {
      checking: 'Checking…',
      queued: 'Waiting for a free slot…',
      uploading: null,
      paused: 'Paused. What was sent is safe on the server.',
      retrying: 'Connection lost. Retrying automatically…',
    }
    if (state in words) {
      if (words[state]) this.say(words[state])
      else if (old !== 'uploading') this.say('Uploading')
    }
    if (state === 'retrying' && old !== 'retrying') announce(`${this.file.name}: connection lost, retrying.`)
    if (state === 'paused' && old !== 'paused') announce(`${this.file.name} paused.`)
    if (state === 'paused' || state === 'retrying') this.stats(false)
    this.controls()
    summary()
  }

  say(text) { this.q('.verdict').textContent = text }
  note(text) { this.q('.note').textContent = text }

  /** The buttons that make sense in this state (rebuilt only when the set changes). */
  controls() {
    const s = this.state
    const want = []
    if (['queued', 'uploading', 'retrying'].includes(s)) want.push('pause')
    if (s === 'paused') want.push('resume')
    if (!FINAL.has(s) && s !== 'checking') want.push('cancel')
    if (s === 'failed') want.push('retry')
    if (FINAL.has(s)) want.push('remove')
    const key = want.join(',')
    if (this.controlsKey === key) return
    const box = this.q('.actions')
    const hadFocus = box.contains(document.activeElement)
    this.controlsKey = key
    const labels = { pause: 'Pause', resume: 'Resume', cancel: 'Cancel', retry: 'Retry', remove: 'Remove' }
    box.replaceChildren(...want.map((action) => {
      const b = document.createElement('button')
      b.type = 'button'
      b.className = 'button' + (action === 'cancel' ? ' danger' : '')
      b.dataset.action = action
      b.textContent = labels[action]
      b.setAttribute('aria-label', `${labels[action]} ${this.file.name}`)
      b.addEventListener('click', () => this.act(action))
      return b
    }))
    // Keep keyboard users in place when Pause becomes Resume and so on.
    if (hadFocus && box.firstChild) box.firstChild.focus()
  }

  act(action) {
    switch (action) {
      case 'pause': this.upload.pause(); break
      case 'resume': this.upload.resume(); break
      case 'cancel': this.upload.cancel(); break
      case 'retry':
        this.note('')
        this.q('.stats').textContent = ''
        delete this.el.dataset.code
        // A new upload of the same file finds the old one by fingerprint and resumes it.
        this.start()
        break
      case 'remove':
        items.delete(this)
        this.el.remove()
        summary()
        $('choose').focus()
        break
    }
  }

  /** Same file as another row still at work? (name, size, modification time) */
  sameFile(file) {
    const f = this.file
    return f.name === file.name && f.size === file.size && f.lastModified === file.lastModified
  }
}

function capitalise(s) { return s ? s[0].toUpperCase() + s.slice(1) : s }

function summary() {
  const all = [...items]
  $('queue').hidden = all.length === 0
  $('drop').classList.toggle('compact', all.length > 0)
  const count = (s) => all.filter((i) => i.state === s).length
  const active = all.filter((i) => !FINAL.has(i.state)).length
  const parts = [`${all.length} file${all.length === 1 ? '' : 's'}`]
  if (active) parts.push(`${active} in progress`)
  if (count('done')) parts.push(`${count('done')} uploaded`)
  if (count('refused')) parts.push(`${count('refused')} refused`)
  if (count('failed')) parts.push(`${count('failed')} failed`)
  $('summary').textContent = parts.join(' · ')
  $('clear').hidden = !all.some((i) => FINAL.has(i.state))
}

// ---------- adding files ----------

async function addFiles(fileList) {
  const files = [...fileList].filter((f) => {
    const dup = [...items].some((i) => !FINAL.has(i.state) && i.sameFile(f))
    if (dup) announce(`${f.name} is already in the list.`)
    return !dup
  })
  if (!files.length || !client) return
  $('batch').hidden = true
  // The whole drop first (count and total size), then each file; reads at most 8 KiB of each.
  const batch = await client.checkBatch(files)
  if (batch.code) {
    $('batch').textContent = `${batch.message} Nothing was sent.`
    $('batch').hidden = false
    return
  }
  const rows = files.map((f) => new Item(f))
  for (const row of rows) {
    items.add(row)
    $('files').append(row.el)
  }
  summary()
  rows.forEach((row, i) => row.verdict(batch.files[i]))
}

function wireDropZone() {
  const zone = $('drop')
  const picker = $('picker')
  $('choose').addEventListener('click', () => picker.click())
  picker.addEventListener('change', () => {
    addFiles(picker.files)
    picker.value = '' // choosing the same file again must fire `change` again
  })
  // Dragging over child elements fires enter/leave pairs: count them.
  let depth = 0
  const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes('Files')
  zone.addEventListener('dragenter', (e) => {
    if (!hasFiles(e)) return
    e.preventDefault()
    depth++
    zone.classList.add('over')
  })
  zone.addEventListener('dragover', (e) => {
    if (!hasFiles(e)) return
    e.preventDefault()
    e.dataTransfer.dropEffect = 'copy'
  })
  zone.addEventListener('dragleave', () => {
    if (--depth <= 0) { depth = 0; zone.classList.remove('over') }
  })
  zone.addEventListener('drop', (e) => {
    e.preventDefault()
    depth = 0
    zone.classList.remove('over')
    if (e.dataTransfer?.files?.length) addFiles(e.dataTransfer.files)
  })
  // A file dropped next to the zone must not make the browser navigate away from the uploads.
  for (const type of ['dragover', 'drop']) {
    window.addEventListener(type, (e) => { if (!zone.contains(e.target)) e.preventDefault() })
  }
  $('clear').addEventListener('click', () => {
    for (const i of [...items]) if (FINAL.has(i.state)) { items.delete(i); i.el.remove() }
    summary()
    $('choose').focus()
  })
}

// ---------- unfinished uploads from an earlier visit ----------

/** The module's resume records for this endpoint: `PREFIX name|size|mtime|lead` → upload URL. */
function earlierRecords() {
  const out = []
  for (let i = 0; i < localStorage.length; i++) {
    const key = localStorage.key(i)
    if (!key || !key.startsWith(RESUME_PREFIX)) continue
    const parts = key.slice(RESUME_PREFIX.length).split('|')
    if (parts.length < 4) continue
    const [sizeText, mtime] = parts.slice(-3, -1)
    out.push({ key, url: localStorage.getItem(key), name: parts.slice(0, -3).join('|'), size: Number(sizeText), mtime: Number(mtime) })
  }
  return out
}

async function showEarlier() {
  const rows = []
  for (const rec of earlierRecords()) {
    let offset = null
    try {
      const res = await fetch(rec.url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' }, cache: 'no-store' })
      if (res.status === 404 || res.status === 410) {
        localStorage.removeItem(rec.key) // expired or removed: nothing to resume
        continue
      }
      if (res.ok) offset = Number(res.headers.get('upload-offset'))
    } catch {
      // The server is unreachable right now; still list it.
    }
    const li = document.createElement('li')
    li.dataset.name = rec.name
    li.dataset.size = String(rec.size)
    li.dataset.mtime = String(rec.mtime)
    li.innerHTML = '<span class="name"></span><span class="where"></span>'
    li.querySelector('.name').textContent = rec.name
    li.querySelector('.where').textContent = offset == null
      ? size(rec.size)
      : `${rec.size ? Math.floor((offset / rec.size) * 100) : 0}% of ${size(rec.size)} on the server`
    const discard = document.createElement('button')
    discard.type = 'button'
    discard.className = 'button subtle'
    discard.textContent = 'Discard'
    discard.setAttribute('aria-label', `Discard the unfinished upload of ${rec.name}`)
    discard.addEventListener('click', async () => {
      localStorage.removeItem(rec.key)
      li.remove()
      $('earlier').hidden = !$('earlier-list').children.length
      try { await fetch(rec.url, { method: 'DELETE', headers: { 'Tus-Resumable': '1.0.0' } }) } catch {}
    })
    li.append(discard)
    rows.push(li)
  }
  $('earlier-list').replaceChildren(...rows)
  $('earlier').hidden = rows.length === 0
  if (rows.length) announce(`${rows.length} unfinished upload${rows.length === 1 ? '' : 's'} can be resumed.`)
}

function forgetEarlier(file) {
  for (const li of [...$('earlier-list').children]) {
    if (li.dataset.name === file.name && Number(li.dataset.size) === file.size) li.remove()
  }
  $('earlier').hidden = !$('earlier-list').children.length
}

// ---------- the plain form's result (?uploaded=N, ?error=CODE) ----------

function showFormResult() {
  const params = new URLSearchParams(location.search)
  const flash = $('flash')
  if (params.has('uploaded')) {
    const n = Number(params.get('uploaded'))
    flash.textContent = `${n} file${n === 1 ? '' : 's'} uploaded with the plain form.`
  } else if (params.has('error')) {
    const code = params.get('error')
    flash.textContent = `The plain form upload was refused. ${FORM_ERRORS[code] || 'The server did not accept it.'} Nothing was kept. (${code})`
    flash.classList.add('error')
  } else {
    return
  }
  flash.hidden = false
  // Show it once: a reload should not repeat it.
  history.replaceState(null, '', location.pathname)
}

// ---------- start ----------

async function main() {
  showFormResult()
  wireDropZone()
  try {
    await init()
    client = await Client.connect(ENDPOINT)
  } catch (err) {
    $('drop-hint').textContent = `Uploads are unavailable right now: ${err.message || err}. The plain form below still works.`
    $('fallback').open = true
    return
  }
  showPolicy(JSON.parse(client.policy), client.checksumAlgorithm)
  $('choose').disabled = false
  $('fallback').open = false
  document.body.dataset.ready = 'true'
  showEarlier()
}

main()
