// The upload page. Every rule, word for a size or a refusal, and wire format is the WebAssembly
// module's (the same Rust code the server runs); this file only turns its verdicts, states and
// progress into a page. No framework.

import init, { Client, formatSize, messageFor } from './pkg/sluice_browser.js'

const $ = (id) => document.getElementById(id)
const ENDPOINT = new URL('/files/', location.href).href
/** Final states: the row keeps its result and offers no more transfer controls. */
const FINAL = new Set(['done', 'failed', 'cancelled', 'refused'])

let client = null
const items = new Set()

// ---------- formatting ----------

const size = (n) => formatSize(n)
const speed = (bps) => `${size(Math.round(bps))}/s`
function duration(s) {
  if (!isFinite(s)) return ''
  if (s < 1) return 'less than a second'
  if (s < 60) return `${Math.round(s)} s`
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`
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

function showPolicy({ rules, hint }) {
  const ul = $('policy-list')
  ul.replaceChildren(...rules.map(({ label, text }) => {
    const li = document.createElement('li')
    li.innerHTML = '<span class="k"></span><span class="v"></span>'
    li.querySelector('.k').textContent = label
    li.querySelector('.v').textContent = text
    return li
  }))
  $('drop-hint').textContent = hint
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
      parallel: this.file.size >= PARALLEL_FROM ? PARALLEL_PARTS : 1,
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

async function showEarlier() {
  // The module lists what it remembered for resuming, asks the server where each stands and
  // forgets what the server no longer has.
  const rows = (await client.pendingUploads()).map((rec) => {
    const li = document.createElement('li')
    li.dataset.name = rec.name
    li.dataset.size = String(rec.size)
    li.dataset.mtime = String(rec.lastModified ?? -1)
    li.innerHTML = '<span class="name"></span><span class="where"></span>'
    li.querySelector('.name').textContent = rec.name
    li.querySelector('.where').textContent = rec.offset == null
      ? size(rec.size)
      : `${rec.size ? Math.floor((rec.offset / rec.size) * 100) : 0}% of ${size(rec.size)} on the server`
    const discard = document.createElement('button')
    discard.type = 'button'
    discard.className = 'button subtle'
    discard.textContent = 'Discard'
    discard.setAttribute('aria-label', `Discard the unfinished upload of ${rec.name}`)
    discard.addEventListener('click', () => {
      li.remove()
      $('earlier').hidden = !$('earlier-list').children.length
      client.discard(rec.url)
    })
    li.append(discard)
    return li
  })
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
    const words = moduleLoaded ? messageFor(code) : 'The server did not accept it.'
    flash.textContent = `The plain form upload was refused. ${words} Nothing was kept. (${code})`
    flash.classList.add('error')
  } else {
    return
  }
  flash.hidden = false
  // Show it once: a reload should not repeat it.
  history.replaceState(null, '', location.pathname)
}

// ---------- start ----------

/**
 * Files from this size go in parallel parts joined by the server (when it lists tus
 * concatenation): one browser stream tops out well below what the server takes, while a
 * smaller file is done in a second or two as one stream and resumes with one request.
 */
const PARALLEL_FROM = 64 * 1024 * 1024
const PARALLEL_PARTS = 4

/** Whether the module loaded (its words are then available even if the server is not). */
let moduleLoaded = false

async function main() {
  wireDropZone()
  try {
    await init()
    moduleLoaded = true
    showFormResult()
    client = await Client.connect(ENDPOINT)
  } catch (err) {
    if (!moduleLoaded) showFormResult()
    $('drop-hint').textContent = `Uploads are unavailable right now: ${err.message || err}. The plain form below still works.`
    $('fallback').open = true
    return
  }
  showPolicy(client.describePolicy())
  $('choose').disabled = false
  $('fallback').open = false
  document.body.dataset.hashWorkers = String(client.hashWorkers)
  document.body.dataset.ready = 'true'
  showEarlier()
}

main()
