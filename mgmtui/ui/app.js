// Warren's management UI: a small single-page application over the
// RabbitMQ-compatible HTTP API. No build step, no dependencies.
'use strict';

const state = { auth: sessionStorage.getItem('warren-auth'), user: null, timer: null, history: [] };
const main = document.getElementById('main');

// h builds an element: h('td', {class: 'num'}, 'text', child...).
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else if (v !== false && v != null) el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c != null) el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

function flash(text, ok) {
  const f = document.getElementById('flash');
  f.textContent = text || '';
  f.className = ok ? 'ok' : 'error';
}

// api calls the HTTP API with the session's credentials.
async function api(method, path, body) {
  const opts = { method, headers: { Authorization: 'Basic ' + state.auth } };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  const r = await fetch('api' + path, opts);
  if (r.status === 401) {
    logout();
    throw new Error('login required');
  }
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (!r.ok) throw new Error((data && (data.reason || data.error)) || r.statusText);
  return data;
}

const enc = encodeURIComponent;
const vhost = () => document.getElementById('vhost').value;
const vpath = () => (vhost() ? '/' + enc(vhost()) : '');
const fmt = n => (n == null ? '' : typeof n === 'number' ? (Number.isInteger(n) ? n.toLocaleString() : n.toFixed(1)) : String(n));
const rate = d => (d && d.rate != null ? d.rate.toFixed(1) + '/s' : '');
const td = (v, num) => h('td', num ? { class: 'num' } : {}, v);

function table(headers, rows) {
  return h('table', {}, h('tr', {}, headers.map(x => h('th', {}, x))), rows.length ? rows : h('tr', {}, h('td', { colspan: headers.length }, 'Nothing to show.')));
}

// action runs an API change, reports it and re-renders the page.
async function action(what, fn) {
  try {
    await fn();
    flash(what, true);
  } catch (e) {
    flash(what + ' failed: ' + e.message);
  }
  route();
}

function formValues(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    out[el.name] = el.type === 'checkbox' ? el.checked : el.value;
  }
  return out;
}

function parseArgs(text) {
  if (!text.trim()) return {};
  return JSON.parse(text);
}

// ---- login ----

function loginPage() {
  const form = h('form', { class: 'login', id: 'login-form' },
    h('h2', {}, 'Log in'),
    h('label', {}, 'Username', h('input', { id: 'login-user', name: 'user', autocomplete: 'username' })),
    h('label', {}, 'Password', h('input', { id: 'login-pass', name: 'pass', type: 'password', autocomplete: 'current-password' })),
    h('button', { id: 'login-btn', type: 'submit' }, 'Log in'));
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    const v = formValues(form);
    state.auth = btoa(v.user + ':' + v.pass);
    try {
      state.user = await api('GET', '/whoami');
      sessionStorage.setItem('warren-auth', state.auth);
      flash('');
      await start();
    } catch (e) {
      state.auth = null;
      flash('Login failed: ' + e.message);
    }
  });
  main.replaceChildren(form);
}

function logout() {
  sessionStorage.removeItem('warren-auth');
  state.auth = null;
  state.user = null;
  for (const id of ['nav', 'logout', 'vhost-pick']) document.getElementById(id).hidden = true;
  document.getElementById('who').textContent = '';
  clearInterval(state.timer);
  loginPage();
}

async function start() {
  if (!state.user) state.user = await api('GET', '/whoami');
  for (const id of ['nav', 'logout', 'vhost-pick']) document.getElementById(id).hidden = false;
  document.getElementById('who').textContent = state.user.name;
  const sel = document.getElementById('vhost');
  const vhosts = await api('GET', '/vhosts?columns=name');
  sel.replaceChildren(h('option', { value: '' }, 'All'), ...vhosts.map(v => h('option', { value: v.name }, v.name)));
  if (!location.hash || location.hash === '#/') location.hash = '#/overview';
  route();
  clearInterval(state.timer);
  state.timer = setInterval(() => { if (!document.querySelector('form :focus')) route(true); }, 5000);
}

// ---- router ----

const pages = {
  overview: overviewPage, connections: connectionsPage, channels: channelsPage,
  exchanges: exchangesPage, exchange: exchangePage, queues: queuesPage, queue: queuePage, admin: adminPage,
};

async function route(poll) {
  if (!state.auth) return loginPage();
  const parts = location.hash.replace(/^#\//, '').split('/').map(decodeURIComponent);
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.getAttribute('href') === '#/' + parts[0] || a.getAttribute('href') === '#/' + parts[0] + 's');
  const page = pages[parts[0]] || overviewPage;
  try {
    const content = await page(...parts.slice(1));
    if (poll && document.querySelector('main form :focus')) return;
    main.replaceChildren(content);
  } catch (e) {
    flash(e.message);
  }
}

window.addEventListener('hashchange', () => route());
document.getElementById('vhost').addEventListener('change', () => route());
document.getElementById('logout').addEventListener('click', logout);

// ---- overview ----

function drawChart(canvas, series) {
  const ctx = canvas.getContext('2d');
  const w = canvas.width = canvas.clientWidth || 600;
  const hgt = canvas.height = 180;
  ctx.clearRect(0, 0, w, hgt);
  const max = Math.max(1, ...series.flatMap(s => s.values));
  ctx.fillStyle = '#666';
  ctx.fillText(fmt(max), 4, 12);
  for (const s of series) {
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    s.values.forEach((v, i) => {
      const x = (i / Math.max(1, s.values.length - 1)) * (w - 10) + 5;
      const y = hgt - 5 - (v / max) * (hgt - 20);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }
}

function chart(title, series) {
  const canvas = h('canvas', {});
  const box = h('section', {}, h('h3', {}, title), canvas,
    h('div', { class: 'legend' }, series.map(s => h('span', {}, h('i', {}), s.name + ' ' + fmt(s.values[s.values.length - 1])))));
  box.querySelectorAll('.legend i').forEach((i, n) => { i.style.background = series[n].color; });
  requestAnimationFrame(() => drawChart(canvas, series));
  return box;
}

async function overviewPage() {
  const o = await api('GET', '/overview');
  const ms = o.message_stats || {}, qt = o.queue_totals || {};
  state.history.push({ publish: (ms.publish_details || {}).rate || 0, deliver: (ms.deliver_get_details || {}).rate || 0,
    ack: (ms.ack_details || {}).rate || 0, ready: qt.messages_ready || 0, unacked: qt.messages_unacknowledged || 0 });
  if (state.history.length > 120) state.history.shift();
  const col = k => state.history.map(x => x[k]);
  const ot = o.object_totals || {};
  let nodes = [];
  try { nodes = await api('GET', '/nodes'); } catch (e) { /* monitoring tag needed */ }
  const importInput = h('input', { type: 'file', id: 'defs-file', accept: '.json,application/json' });
  return h('div', { id: 'overview' },
    h('h2', {}, 'Overview'),
    h('p', { id: 'cluster-line' }, nodes.some(n => n.raft)
      ? `Cluster ${o.cluster_name} · ${nodes.filter(n => n.running).length} of ${nodes.length} nodes running · this is ${o.node}`
      : `Node ${o.node}`),
    h('div', { class: 'totals' },
      ['connections', 'channels', 'exchanges', 'queues', 'consumers'].map(k => h('div', {}, k, h('b', { id: 'total-' + k }, fmt(ot[k])))),
      h('div', {}, 'messages', h('b', { id: 'total-messages' }, fmt(qt.messages)))),
    h('section', {}, h('h3', {}, 'Nodes'), nodesTable(nodes)),
    chart('Queued messages', [{ name: 'Ready', color: '#d80', values: col('ready') }, { name: 'Unacked', color: '#36c', values: col('unacked') }]),
    chart('Message rates (/s)', [{ name: 'Publish', color: '#c33', values: col('publish') }, { name: 'Deliver/get', color: '#393', values: col('deliver') }, { name: 'Ack', color: '#36c', values: col('ack') }]),
    h('section', {}, h('h3', {}, 'Listeners'), table(['Node', 'Protocol', 'Address', 'Port'], (o.listeners || []).map(l => h('tr', {}, td(l.node), td(l.protocol), td(l.ip_address), td(l.port, true))))),
    h('section', {}, h('h3', {}, 'Definitions'),
      h('button', { id: 'defs-export', onclick: exportDefinitions }, 'Download definitions'), ' ',
      importInput, h('button', { id: 'defs-import', onclick: () => importDefinitions(importInput) }, 'Upload definitions')));
}

// nodesTable lists the nodes of /api/nodes: whether each runs, its part
// in the cluster's metadata log (Warren's raft object; none on a
// standalone node) and the figures it reported. A stopped node can be
// forgotten (administrators).
function nodesTable(nodes) {
  const mib = v => (v == null ? '' : fmt(Math.round(v / 1048576)) + ' MiB');
  const role = r => !r ? 'standalone' : [r.suffrage, r.leader && 'leader'].filter(Boolean).join(', ');
  const admin = state.user && (state.user.tags || []).includes('administrator');
  return table(['Name', 'State', 'Role', 'Raft state', 'Applied', 'Memory', 'Disk free', 'Uptime', 'Alarms', ''], nodes.map(n => {
    const r = n.raft;
    return h('tr', { id: 'node-' + n.name.replace(/[^A-Za-z0-9_-]/g, '_'), class: n.running ? 'node-up' : 'node-down' },
      td(n.name), td(h('span', { class: n.running ? 'up' : 'down' }, n.running ? 'running' : 'down')), td(role(r)),
      td(r && r.state || ''), td(r && r.applied_index != null ? fmt(r.applied_index) : '', true),
      td(mib(n.mem_used), true), td(mib(n.disk_free), true),
      td(n.uptime == null ? '' : fmt(Math.round(n.uptime / 1000)) + ' s', true),
      td(n.running ? [n.mem_alarm && 'memory', n.disk_free_alarm && 'disk'].filter(Boolean).join(', ') || 'none' : ''),
      td(admin && r && !n.running ? h('button', { class: 'danger', title: 'Remove it from the cluster; started again, it joins as a new member',
        onclick: () => action(n.name + ' forgotten', () => api('DELETE', '/nodes/' + enc(n.name))) }, 'Forget') : ''));
  }));
}

async function exportDefinitions() {
  try {
    const d = await api('GET', '/definitions');
    const url = URL.createObjectURL(new Blob([JSON.stringify(d, null, 2)], { type: 'application/json' }));
    const a = h('a', { href: url, download: 'warren-definitions.json' });
    document.body.append(a);
    a.click();
    a.remove();
    URL.revokeObjectURL(url);
  } catch (e) {
    flash('Export failed: ' + e.message);
  }
}

async function importDefinitions(input) {
  const file = input.files[0];
  if (!file) return flash('Choose a definitions file first.');
  await action('Definitions imported', async () => api('POST', '/definitions', await file.text()));
}

// ---- connections and channels ----

async function connectionsPage() {
  const conns = await api('GET', vhost() ? '/vhosts/' + enc(vhost()) + '/connections' : '/connections');
  return h('div', {}, h('h2', {}, 'Connections'), h('section', {}, table(['Name', 'Client name', 'Node', 'User', 'Vhost', 'Channels', 'In', 'Out', ''],
    conns.map(c => h('tr', {}, td(c.name), td((c.client_properties || {}).connection_name || ''), td(c.node), td(c.user), td(c.vhost), td(c.channels, true),
      td(rate(c.recv_oct_details), true), td(rate(c.send_oct_details), true),
      td(h('button', { class: 'danger', onclick: () => action('Connection closed', () => api('DELETE', '/connections/' + enc(c.name))) }, 'Force close')))))));
}

async function channelsPage() {
  const chans = await api('GET', '/channels');
  return h('div', {}, h('h2', {}, 'Channels'), h('section', {}, table(['Channel', 'Node', 'User', 'Vhost', 'Consumers', 'Prefetch', 'Unacked', 'Confirm', 'Publish', 'Deliver'],
    chans.filter(c => !vhost() || c.vhost === vhost()).map(c => h('tr', {}, td(c.name), td(c.node), td(c.user), td(c.vhost), td(c.consumer_count, true), td(c.prefetch_count, true),
      td(c.messages_unacknowledged, true), td(c.confirm ? 'yes' : 'no'), td(rate((c.message_stats || {}).publish_details), true),
      td(rate((c.message_stats || {}).deliver_get_details), true))))));
}

// ---- paged lists ----

// pagedList renders a server-side paged, filtered list of path.
function pagedList(kind, path, headers, row) {
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const page = Number(params.get('page') || 1), name = params.get('name') || '', regex = params.get('regex') === 'true';
  return api('GET', path + '?page=' + page + '&page_size=100&name=' + enc(name) + '&use_regex=' + regex).then(res => {
    const go = (p, n, r) => { location.hash = '#/' + kind + '?page=' + p + '&name=' + enc(n) + '&regex=' + r; };
    const filter = h('input', { id: kind + '-filter', value: name, placeholder: 'Filter by name' });
    const rx = h('input', { type: 'checkbox', checked: regex });
    const form = h('form', { class: 'pager' }, filter, h('label', {}, rx, ' regex'), h('button', { type: 'submit' }, 'Filter'),
      h('span', {}, `${res.filtered_count} of ${res.total_count} · page ${res.page} of ${Math.max(1, res.page_count)}`),
      h('button', { type: 'button', disabled: page <= 1, onclick: () => go(page - 1, name, regex) }, '‹ Prev'),
      h('button', { type: 'button', disabled: page >= res.page_count, onclick: () => go(page + 1, name, regex) }, 'Next ›'));
    form.addEventListener('submit', ev => { ev.preventDefault(); go(1, filter.value, rx.checked); });
    return h('section', {}, form, table(headers, res.items.map(row)));
  });
}

function declareForm(id, title, fields, submit) {
  const form = h('form', { class: 'inline', id }, fields, h('button', { type: 'submit', id: id + '-btn' }, title));
  form.addEventListener('submit', ev => {
    ev.preventDefault();
    const v = formValues(form);
    action(title + ' done', () => submit(v));
  });
  return h('section', {}, h('h3', {}, title), form);
}

function vhostField() {
  const vs = Array.from(document.getElementById('vhost').options).filter(o => o.value).map(o => o.value);
  return h('label', {}, 'Vhost', h('select', { name: 'vhost' }, vs.map(v => h('option', { value: v, selected: v === (vhost() || '/') }, v))));
}

// ---- exchanges ----

async function exchangesPage() {
  const list = await pagedList('exchanges', '/exchanges' + vpath(), ['Vhost', 'Name', 'Type', 'Features', 'In', 'Out'], e =>
    h('tr', {}, td(e.vhost), td(h('a', { href: '#/exchange/' + enc(e.vhost) + '/' + enc(e.name || 'amq.default') }, e.name || '(AMQP default)')), td(e.type),
      td([e.durable && 'D', e.auto_delete && 'AD', e.internal && 'I'].filter(Boolean).join(' ')),
      td(rate((e.message_stats || {}).publish_in_details), true), td(rate((e.message_stats || {}).publish_out_details), true)));
  return h('div', {}, h('h2', {}, 'Exchanges'), list,
    declareForm('x-declare', 'Add exchange', [vhostField(), h('label', {}, 'Name', h('input', { name: 'name', id: 'x-name', required: true })),
      h('label', {}, 'Type', h('select', { name: 'type' }, ['direct', 'fanout', 'topic', 'headers'].map(t => h('option', {}, t)))),
      h('label', {}, 'Durable', h('input', { type: 'checkbox', name: 'durable', checked: true })),
      h('label', {}, 'Auto delete', h('input', { type: 'checkbox', name: 'auto_delete' })),
      h('label', {}, 'Internal', h('input', { type: 'checkbox', name: 'internal' })),
      h('label', {}, 'Arguments (JSON)', h('input', { name: 'arguments', placeholder: '{"alternate-exchange": "ae"}' }))],
    v => api('PUT', '/exchanges/' + enc(v.vhost) + '/' + enc(v.name), { type: v.type, durable: v.durable, auto_delete: v.auto_delete, internal: v.internal, arguments: parseArgs(v.arguments) })));
}

function bindingsTable(bindings, vh) {
  return table(['From', 'To', 'Routing key', 'Arguments', ''], bindings.map(b => h('tr', {}, td(b.source || '(AMQP default)'), td(b.destination_type + ' ' + b.destination),
    td(b.routing_key), td(JSON.stringify(b.arguments)),
    td(b.source ? h('button', { class: 'danger', onclick: () => action('Binding removed', () => api('DELETE', '/bindings/' + enc(vh) + '/e/' + enc(b.source) + '/' + b.destination_type[0] + '/' + enc(b.destination) + '/' + enc(b.properties_key))) }, 'Unbind') : ''))));
}

function publishForm(id, vh, exchangeName, fixedKey) {
  return declareForm(id, 'Publish message', [
    fixedKey == null ? h('label', {}, 'Routing key', h('input', { name: 'routing_key', id: id + '-key' })) : null,
    h('label', {}, 'Delivery mode', h('select', { name: 'delivery_mode' }, h('option', { value: '1' }, '1 - non-persistent'), h('option', { value: '2' }, '2 - persistent'))),
    h('label', {}, 'Headers (JSON)', h('input', { name: 'headers', placeholder: '{}' })),
    h('label', {}, 'Payload', h('textarea', { name: 'payload', id: id + '-payload' }))],
  async v => {
    const r = await api('POST', '/exchanges/' + enc(vh) + '/' + enc(exchangeName) + '/publish', {
      routing_key: fixedKey == null ? v.routing_key : fixedKey, payload: v.payload, payload_encoding: 'string',
      properties: { delivery_mode: Number(v.delivery_mode), headers: parseArgs(v.headers) } });
    if (!r.routed) throw new Error('message published but not routed');
  });
}

async function exchangePage(vh, name) {
  const e = await api('GET', '/exchanges/' + enc(vh) + '/' + enc(name));
  const src = await api('GET', '/exchanges/' + enc(vh) + '/' + enc(name) + '/bindings/source');
  const dst = await api('GET', '/exchanges/' + enc(vh) + '/' + enc(name) + '/bindings/destination');
  const ms = e.message_stats || {};
  return h('div', {}, h('h2', {}, 'Exchange ' + (e.name || '(AMQP default)')),
    h('section', {}, table(['Vhost', 'Type', 'Durable', 'Auto delete', 'Internal', 'Arguments', 'In', 'Out'], [h('tr', {}, td(e.vhost), td(e.type), td(String(e.durable)), td(String(e.auto_delete)),
      td(String(e.internal)), td(JSON.stringify(e.arguments)), td(fmt(ms.publish_in) + ' (' + rate(ms.publish_in_details) + ')', true), td(fmt(ms.publish_out) + ' (' + rate(ms.publish_out_details) + ')', true))])),
    h('section', {}, h('h3', {}, 'Bindings from this exchange'), bindingsTable(src, vh), h('h3', {}, 'Bindings to this exchange'), bindingsTable(dst, vh)),
    e.name ? declareForm('x-bind', 'Add binding from this exchange', [
      h('label', {}, 'To', h('select', { name: 'dtype' }, h('option', { value: 'q' }, 'queue'), h('option', { value: 'e' }, 'exchange'))),
      h('label', {}, 'Destination', h('input', { name: 'destination', required: true })),
      h('label', {}, 'Routing key', h('input', { name: 'routing_key' })),
      h('label', {}, 'Arguments (JSON)', h('input', { name: 'arguments', placeholder: '{}' }))],
    v => api('POST', '/bindings/' + enc(vh) + '/e/' + enc(e.name) + '/' + v.dtype + '/' + enc(v.destination), { routing_key: v.routing_key, arguments: parseArgs(v.arguments) })) : null,
    publishForm('x-pub', vh, name),
    e.name && !e.name.startsWith('amq.') ? h('section', {}, h('button', { class: 'danger', id: 'x-delete', onclick: () => action('Exchange deleted', async () => {
      await api('DELETE', '/exchanges/' + enc(vh) + '/' + enc(e.name));
      location.hash = '#/exchanges';
    }) }, 'Delete this exchange')) : null);
}

// ---- queues ----

async function queuesPage() {
  const list = await pagedList('queues', '/queues' + vpath(), ['Vhost', 'Name', 'Features', 'Consumers', 'Ready', 'Unacked', 'Total', 'Incoming', 'Deliver/get', 'Ack'], q => {
    const ms = q.message_stats || {};
    return h('tr', {}, td(q.vhost), td(h('a', { href: '#/queue/' + enc(q.vhost) + '/' + enc(q.name) }, q.name)),
      td([q.durable && 'D', q.auto_delete && 'AD', q.exclusive && 'Excl', q.policy && 'Policy: ' + q.policy].filter(Boolean).join(' ')),
      td(q.consumers, true), td(fmt(q.messages_ready), true), td(fmt(q.messages_unacknowledged), true), td(fmt(q.messages), true),
      td(rate(ms.publish_details), true), td(rate(ms.deliver_get_details), true), td(rate(ms.ack_details), true));
  });
  return h('div', {}, h('h2', {}, 'Queues'), list,
    declareForm('q-declare', 'Add queue', [vhostField(), h('label', {}, 'Name', h('input', { name: 'name', id: 'q-name', required: true })),
      h('label', {}, 'Durable', h('input', { type: 'checkbox', name: 'durable', checked: true })),
      h('label', {}, 'Auto delete', h('input', { type: 'checkbox', name: 'auto_delete' })),
      h('label', {}, 'Arguments (JSON)', h('input', { name: 'arguments', placeholder: '{"x-message-ttl": 60000}' }))],
    v => api('PUT', '/queues/' + enc(v.vhost) + '/' + enc(v.name), { durable: v.durable, auto_delete: v.auto_delete, arguments: parseArgs(v.arguments) })));
}

async function queuePage(vh, name) {
  const base = '/queues/' + enc(vh) + '/' + enc(name);
  const q = await api('GET', base);
  const bindings = await api('GET', base + '/bindings');
  const ms = q.message_stats || {};
  const got = h('div', { id: 'q-got' });
  const getForm = h('form', { class: 'inline', id: 'q-get' },
    h('label', {}, 'Ack mode', h('select', { name: 'ackmode' }, ['ack_requeue_true', 'ack_requeue_false', 'reject_requeue_true', 'reject_requeue_false'].map(m => h('option', {}, m)))),
    h('label', {}, 'Messages', h('input', { name: 'count', type: 'number', value: '1', min: '1' })),
    h('button', { type: 'submit', id: 'q-get-btn' }, 'Get messages'));
  getForm.addEventListener('submit', async ev => {
    ev.preventDefault();
    const v = formValues(getForm);
    try {
      const msgs = await api('POST', base + '/get', { count: Number(v.count), ackmode: v.ackmode, encoding: 'auto', truncate: 50000 });
      got.replaceChildren(msgs.length ? table(['Exchange', 'Routing key', 'Redelivered', 'Properties', 'Payload'], msgs.map(m =>
        h('tr', {}, td(m.exchange || '(AMQP default)'), td(m.routing_key), td(String(m.redelivered)), td(h('pre', {}, JSON.stringify(m.properties))), td(h('pre', {}, m.payload))))) : 'Queue is empty.');
    } catch (e) {
      flash('Get failed: ' + e.message);
    }
  });
  return h('div', {}, h('h2', {}, 'Queue ' + q.name),
    h('section', {}, h('div', { class: 'totals' },
      h('div', {}, 'Total', h('b', { id: 'q-messages' }, fmt(q.messages))), h('div', {}, 'Ready', h('b', { id: 'q-ready' }, fmt(q.messages_ready))),
      h('div', {}, 'Unacked', h('b', {}, fmt(q.messages_unacknowledged))), h('div', {}, 'Consumers', h('b', {}, fmt(q.consumers))),
      h('div', {}, 'Incoming', h('b', {}, rate(ms.publish_details))), h('div', {}, 'Deliver/get', h('b', {}, rate(ms.deliver_get_details)))),
    table(['Vhost', 'Durable', 'Auto delete', 'Exclusive', 'Arguments', 'Policy'], [h('tr', {}, td(q.vhost), td(String(q.durable)), td(String(q.auto_delete)),
      td(String(q.exclusive)), td(JSON.stringify(q.arguments)), td(q.policy || ''))])),
    h('section', {}, h('h3', {}, 'Consumers'), table(['Channel', 'Tag', 'Ack required', 'Prefetch'], (q.consumer_details || []).map(c =>
      h('tr', {}, td(c.channel_details.name), td(c.consumer_tag), td(String(c.ack_required)), td(c.prefetch_count, true))))),
    h('section', {}, h('h3', {}, 'Bindings'), bindingsTable(bindings, vh)),
    declareForm('q-bind', 'Add binding to this queue', [h('label', {}, 'From exchange', h('input', { name: 'source', required: true })),
      h('label', {}, 'Routing key', h('input', { name: 'routing_key' })), h('label', {}, 'Arguments (JSON)', h('input', { name: 'arguments', placeholder: '{}' }))],
    v => api('POST', '/bindings/' + enc(vh) + '/e/' + enc(v.source) + '/q/' + enc(name), { routing_key: v.routing_key, arguments: parseArgs(v.arguments) })),
    publishForm('pub', vh, 'amq.default', name),
    h('section', {}, h('h3', {}, 'Get messages'), getForm, got),
    h('section', {},
      h('button', { class: 'danger', id: 'q-purge', onclick: () => action('Queue purged', () => api('DELETE', base + '/contents')) }, 'Purge messages'), ' ',
      h('button', { class: 'danger', id: 'q-delete', onclick: () => action('Queue deleted', async () => {
        await api('DELETE', base);
        location.hash = '#/queues';
      }) }, 'Delete queue')));
}

// ---- admin ----

async function adminPage() {
  const [users, vhosts, perms, policies] = await Promise.all([
    api('GET', '/users').catch(() => []), api('GET', '/vhosts'), api('GET', '/permissions').catch(() => []), api('GET', '/policies').catch(() => [])]);
  return h('div', {}, h('h2', {}, 'Admin'),
    h('section', {}, h('h3', {}, 'Users'), table(['Name', 'Tags', ''], users.map(u => h('tr', {}, td(u.name), td(u.tags.join(', ')),
      td(h('button', { class: 'danger', onclick: () => action('User deleted', () => api('DELETE', '/users/' + enc(u.name))) }, 'Delete')))))),
    declareForm('user-add', 'Add or update user', [h('label', {}, 'Name', h('input', { name: 'name', required: true })),
      h('label', {}, 'Password', h('input', { name: 'password', type: 'password' })),
      h('label', {}, 'Tags', h('input', { name: 'tags', placeholder: 'administrator, management' }))],
    v => api('PUT', '/users/' + enc(v.name), v.password ? { password: v.password, tags: v.tags } : { tags: v.tags })),
    h('section', {}, h('h3', {}, 'Virtual hosts'), table(['Name', 'Messages', ''], vhosts.map(v => h('tr', {}, td(v.name), td(fmt(v.messages), true),
      td(h('button', { class: 'danger', onclick: () => action('Vhost deleted', () => api('DELETE', '/vhosts/' + enc(v.name))) }, 'Delete')))))),
    declareForm('vhost-add', 'Add virtual host', [h('label', {}, 'Name', h('input', { name: 'name', required: true }))], v => api('PUT', '/vhosts/' + enc(v.name))),
    h('section', {}, h('h3', {}, 'Permissions'), table(['User', 'Vhost', 'Configure', 'Write', 'Read', ''], perms.map(p => h('tr', {}, td(p.user), td(p.vhost),
      td(p.configure), td(p.write), td(p.read),
      td(h('button', { class: 'danger', onclick: () => action('Permission cleared', () => api('DELETE', '/permissions/' + enc(p.vhost) + '/' + enc(p.user))) }, 'Clear')))))),
    declareForm('perm-set', 'Set permission', [h('label', {}, 'User', h('input', { name: 'user', required: true })), vhostField(),
      h('label', {}, 'Configure', h('input', { name: 'configure', value: '.*' })), h('label', {}, 'Write', h('input', { name: 'write', value: '.*' })),
      h('label', {}, 'Read', h('input', { name: 'read', value: '.*' }))],
    v => api('PUT', '/permissions/' + enc(v.vhost) + '/' + enc(v.user), { configure: v.configure, write: v.write, read: v.read })),
    h('section', {}, h('h3', {}, 'Policies'), table(['Vhost', 'Name', 'Pattern', 'Apply to', 'Priority', 'Definition', ''], policies.map(p => h('tr', {}, td(p.vhost), td(p.name),
      td(p.pattern), td(p['apply-to']), td(p.priority, true), td(JSON.stringify(p.definition)),
      td(h('button', { class: 'danger', onclick: () => action('Policy deleted', () => api('DELETE', '/policies/' + enc(p.vhost) + '/' + enc(p.name))) }, 'Delete')))))),
    declareForm('policy-add', 'Add or update policy', [vhostField(), h('label', {}, 'Name', h('input', { name: 'name', required: true })),
      h('label', {}, 'Pattern', h('input', { name: 'pattern', required: true })),
      h('label', {}, 'Apply to', h('select', { name: 'apply' }, ['all', 'queues', 'exchanges'].map(a => h('option', {}, a)))),
      h('label', {}, 'Priority', h('input', { name: 'priority', type: 'number', value: '0' })),
      h('label', {}, 'Definition (JSON)', h('input', { name: 'definition', placeholder: '{"max-length": 1000}', required: true }))],
    v => api('PUT', '/policies/' + enc(v.vhost) + '/' + enc(v.name), { pattern: v.pattern, 'apply-to': v.apply, priority: Number(v.priority), definition: parseArgs(v.definition) })));
}

if (state.auth) start().catch(() => logout()); else loginPage();
