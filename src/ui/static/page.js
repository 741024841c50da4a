// The live page's script: follows ./events (server-sent events, one `state` message per change) and
// renders it. Every value from etcd goes into the page as text (textContent, dataset), never as markup.
'use strict';

const $ = (id) => document.getElementById(id);
/** Server clock minus ours, from the last message: times are the server's, shown on our clock. */
let offset = 0;
const renderedEvents = new Set();

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (k === 'class') node.className = v;
    else if (k.startsWith('data-')) node.dataset[k.slice(5).replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) if (child !== undefined && child !== null) node.append(child);
  return node;
}

function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function since(cell) {
  const ms = Date.now() + offset - Number(cell.dataset.at);
  cell.textContent = `${cell.dataset.exact === 'true' ? '' : '≥ '}${duration(ms)}`;
}

const labels = { mutex: 'holder', election: 'leader', rwlock: 'holder', semaphore: 'holder', barrier: 'raised by', 'double-barrier': 'in' };

function summary(p) {
  const waiting = `${p.waiters.length} waiting`;
  const leader = p.holders[0];
  switch (p.kind) {
    case 'mutex': return `${p.holders.length > 0 ? 'held' : 'free'}, ${waiting}`;
    case 'election': return leader ? `leader ${JSON.stringify(leader.value)}, term ${leader.token}, ${waiting}` : `no leader, ${waiting}`;
    case 'rwlock': return `${leader?.mode === 'write' ? 'written' : `${p.holders.length} reading`}, ${waiting}`;
    case 'semaphore': return `${p.permits.used} of ${p.permits.total ?? '? (participants disagree)'} permits used, ${waiting}`;
    case 'barrier': return 'raised';
    case 'double-barrier': return p.round ? `round of ${p.round.count ?? '?'} open, ${p.holders.length} in, ${waiting}` : `no round open, ${waiting}`;
    default: return waiting;
  }
}

function details(p, c) {
  const parts = [];
  if (c.mode) parts.push(c.mode);
  if (c.weight !== undefined) parts.push(`weight ${c.weight} of ${c.permits}`);
  if (p.kind === 'election') parts.push(`value ${JSON.stringify(c.value.length > 200 ? `${c.value.slice(0, 200)}…` : c.value)}`);
  if (c.multiLock) parts.push(`multi-lock: ${c.multiLock.join(', ')}`);
  const cell = el('td', null, parts.join('; '));
  if (c.problem) cell.append(parts.length ? ' ' : '', el('span', { class: 'problem' }, `Problem: ${c.problem}`));
  return cell;
}

function row(p, c, role, label) {
  const time = el('td', { 'data-at': String(c.since.at), 'data-exact': String(c.since.exact), class: 'since' });
  since(time);
  return el('tr', { 'data-role': role, 'data-key': c.key, 'data-token': c.token },
    el('td', { class: 'role' }, label),
    el('td', { class: 'key' }, c.key),
    el('td', null, c.token),
    el('td', null, c.leaseId === '0' ? 'none' : c.leaseHex),
    time,
    details(p, c));
}

function primitive(p, i) {
  const id = `p-${i}`;
  const section = el('section', { class: 'primitive', 'aria-labelledby': id, 'data-kind': p.kind, 'data-name': p.name },
    el('h3', { id }, el('span', { class: 'kind' }, p.kind), el('span', { class: 'name' }, p.name)));
  const text = el('p', { class: 'summary' });
  if (p.kind === 'semaphore' && p.permits.total !== undefined) {
    text.append(el('meter', { min: '0', max: String(p.permits.total), value: String(p.permits.used), 'aria-label': `${p.permits.used} of ${p.permits.total} permits used` }));
  }
  text.append(summary(p));
  section.append(text);
  const rows = [...p.holders.map((c) => row(p, c, 'holder', labels[p.kind])), ...p.waiters.map((c, n) => row(p, c, 'waiter', `waiter ${n + 1}`))];
  if (rows.length > 0) {
    const term = p.kind === 'election' ? 'Term' : 'Token';
    section.append(el('table', null,
      el('caption', { class: 'visually-hidden' }, `${p.kind} ${p.name}: holders, then waiters in the order they will be served`),
      el('thead', null, el('tr', null, ...['Role', 'Key', term, 'Lease', 'Held / waited for', 'Details'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', null, ...rows)));
  }
  return section;
}

function handoff(e) {
  const who = (c) => (c ? `${c.key} (token ${c.token})` : '');
  const what = e.event === 'handoff' ? `${who(e.from)} → ${who(e.to)}` : e.event === 'acquired' ? `taken by ${who(e.to)}` : `released by ${who(e.from)}`;
  const when = new Date(e.at - offset);
  return el('li', { 'data-event': e.event, 'data-name': e.name },
    el('time', { datetime: when.toISOString() }, `${e.exact ? '' : '≈ '}${when.toLocaleTimeString()}`),
    `${e.kind} ${e.name}: ${what}`);
}

function render(state) {
  offset = state.now - Date.now();
  const status = $('status');
  status.dataset.live = String(state.live);
  status.textContent = state.live ? 'Live' : `Not live: ${state.problem ?? 'reconnecting'}${state.view ? ' (showing the last state seen)' : ''}`;
  const view = state.view;
  if (!view) return;
  $('prefix').textContent = JSON.stringify(view.prefix);
  $('revision').textContent = view.revision;
  $('keys').textContent = `${view.keys}${view.truncated ? ' (truncated: narrow the prefix)' : ''}`;
  $('list').replaceChildren(...view.primitives.map(primitive));
  $('empty').hidden = view.primitives.length > 0;
  $('foreign').hidden = view.foreign.length === 0;
  $('foreign-rows').replaceChildren(...view.foreign.map((f) => el('tr', { 'data-key': f.key },
    el('td', { class: 'key' }, f.key), el('td', null, f.token), el('td', null, f.leaseId === '0' ? 'none' : f.leaseHex),
    el('td', null, `${f.valueBytes} bytes`), el('td', null, f.reason))));
  const list = $('timeline');
  for (const e of [...view.timeline].reverse()) {
    const id = `${e.at}|${e.kind}|${e.name}|${e.from?.key}|${e.from?.token}|${e.to?.key}|${e.to?.token}`;
    if (renderedEvents.has(id)) continue;
    renderedEvents.add(id);
    list.prepend(handoff(e));
  }
  while (list.children.length > Math.max(view.timeline.length, 1)) list.lastElementChild.remove();
  $('timeline-empty').hidden = list.children.length > 0;
}

const source = new EventSource('events');
source.addEventListener('state', (message) => render(JSON.parse(message.data)));
source.addEventListener('error', () => {
  const status = $('status');
  status.dataset.live = 'false';
  status.textContent = 'Not live: the connection to the server is lost; retrying';
});
setInterval(() => document.querySelectorAll('td.since').forEach(since), 1000);
