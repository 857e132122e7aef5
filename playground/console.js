// Call console: the recent sessions of an API key, and one call's detail (transcript, per-turn
// latency, recording, customer-webhook deliveries), all read from the public API.
(() => {
  'use strict';

  // The page lives at <base>/console, so the API routes are its siblings.
  const API_BASE = new URL('.', window.location.href);
  // The playground keeps the key under the same name: a key pasted there works here.
  const KEY_STORAGE = 'voice-playground.api-key';
  const PAGE_SIZE = 20;
  const STAGES = [
    ['end_of_utterance_delay_ms', 'end of utterance', 'bar-eou'],
    ['llm_ttft_ms', 'LLM first token', 'bar-llm'],
    ['tts_ttfb_ms', 'TTS first byte', 'bar-tts'],
    ['end_to_end_ms', 'total', 'bar-total'],
  ];
  const SVG = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);
  const ui = {
    form: $('key-form'),
    apiKey: $('api-key'),
    more: $('more'),
    error: $('error'),
    sessions: $('sessions').querySelector('tbody'),
    sessionsEmpty: $('sessions-empty'),
    detail: $('detail'),
    detailId: $('detail-id'),
    facts: $('detail-facts'),
    detailStatus: $('detail-status'),
    recording: $('recording'),
    chart: $('chart'),
    turns: $('turns').querySelector('tbody'),
    transcript: $('detail-transcript'),
    deliveries: $('deliveries').querySelector('tbody'),
    deliveriesEmpty: $('deliveries-empty'),
  };
  let nextCursor = null;
  let shown = null; // the session id in the detail view

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(path) {
    let resp;
    try {
      resp = await fetch(new URL(path, API_BASE), {
        headers: { 'X-API-Key': ui.apiKey.value.trim() },
      });
    } catch (err) {
      throw new ApiError(0, 'network_error', `the API did not answer: ${err.message}`);
    }
    const data = await resp.json().catch(() => null);
    if (!resp.ok) {
      throw new ApiError(resp.status, (data && data.error) || `http_${resp.status}`,
        (data && data.message) || resp.statusText || 'request failed');
    }
    return data;
  }

  function showError(err) {
    ui.error.hidden = !err;
    ui.error.textContent = err ? `${err.code || 'error'}: ${err.message}` : '';
  }

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function row(cells) {
    const tr = document.createElement('tr');
    for (const c of cells) {
      const td = el('td');
      if (c instanceof Node) td.append(c);
      else td.textContent = String(c);
      tr.append(td);
    }
    return tr;
  }

  const when = (iso) => (iso ? new Date(iso).toLocaleString() : '–');
  const ms = (v) => (v === null || v === undefined ? '–' : Math.round(v));

  function duration(s) {
    const d = s.usage && s.usage.duration_seconds;
    return d === null || d === undefined ? '–' : `${d.toFixed(1)} s`;
  }

  function agentOf(s) {
    if (s.agent_id) return `${s.agent_id}${s.agent_version ? ` v${s.agent_version}` : ''}`;
    return s.agent_type;
  }

  // ---------------------------------------------------------------- the list

  async function loadSessions(append) {
    showError(null);
    const cursor = append && nextCursor ? `&cursor=${encodeURIComponent(nextCursor)}` : '';
    try {
      const page = await api(`sessions?limit=${PAGE_SIZE}${cursor}`);
      if (!append) ui.sessions.replaceChildren();
      for (const s of page.sessions) ui.sessions.append(sessionRow(s));
      nextCursor = page.next_cursor;
      ui.more.hidden = !nextCursor;
      ui.sessionsEmpty.hidden = ui.sessions.children.length > 0;
      localStorage.setItem(KEY_STORAGE, ui.apiKey.value.trim());
    } catch (err) {
      showError(err);
    }
  }

  function sessionRow(s) {
    const status = el('span', s.status, 'badge');
    status.dataset.status = s.status;
    const phone = s.phone ? `${s.phone.direction} ${s.phone.remote || ''}`.trim() : '';
    const tr = row([when(s.created_at), status, duration(s), s.end_reason || '', agentOf(s), phone,
      el('span', s.session_id, 'mono')]);
    tr.dataset.sessionId = s.session_id;
    tr.dataset.status = s.status;
    tr.addEventListener('click', () => showCall(s.session_id));
    return tr;
  }

  // ---------------------------------------------------------------- one call

  async function showCall(sessionId) {
    shown = sessionId;
    for (const tr of ui.sessions.children) {
      tr.classList.toggle('selected', tr.dataset.sessionId === sessionId);
    }
    ui.detail.hidden = false;
    ui.detail.dataset.sessionId = sessionId;
    ui.detail.dataset.loaded = 'false';
    ui.detailId.textContent = sessionId;
    for (const node of [ui.facts, ui.turns, ui.transcript, ui.deliveries, ui.chart]) {
      node.replaceChildren();
    }
    ui.recording.hidden = true;
    ui.recording.removeAttribute('src');
    ui.detailStatus.textContent = 'Loading…';
    try {
      const [session, deliveries] = await Promise.all([
        api(`session/${sessionId}`), api(`session/${sessionId}/webhooks`),
      ]);
      if (shown !== sessionId) return;
      renderFacts(session);
      renderDeliveries(deliveries.deliveries);
      let report = null;
      try {
        report = await api(`session/${sessionId}/transcript`);
      } catch (err) {
        if (err.status !== 404) throw err;
        ui.detailStatus.textContent = err.message; // live, or the report is not written yet
      }
      if (shown !== sessionId) return;
      if (report) {
        ui.detailStatus.textContent = '';
        renderReport(report, session);
      }
      ui.detail.dataset.loaded = 'true';
    } catch (err) {
      ui.detailStatus.textContent = '';
      showError(err);
    }
  }

  function renderFacts(s) {
    const facts = [
      ['Status', s.status], ['End reason', s.end_reason || '–'], ['Agent', agentOf(s)],
      ['Created', when(s.created_at)], ['Joined', when(s.joined_at)],
      ['Agent joined', when(s.agent_joined_at)], ['Ended', when(s.ended_at)],
      ['Duration', duration(s)], ['Room', s.room_name],
    ];
    for (const [k, v] of facts) ui.facts.append(el('dt', k), el('dd', v));
  }

  // Times in the call are shown from the caller's join (else the first line).
  function renderReport(r, session) {
    if (r.recording_url) {
      ui.recording.src = r.recording_url;
      ui.recording.hidden = false;
    }
    const first = r.transcript.length ? r.transcript[0].started_at : null;
    const start = Date.parse(session.joined_at || first) || null;
    const offset = (iso) => (start && iso ? `+${((Date.parse(iso) - start) / 1000).toFixed(1)} s` : '');
    ui.transcript.replaceChildren(...r.transcript.map((t) => {
      const li = el('li', null, `line ${t.role === 'user' ? 'caller' : 'agent'}`);
      li.dataset.role = t.role;
      li.append(el('span', `${t.role === 'user' ? 'Caller' : 'Agent'} ${offset(t.started_at)}`, 'who'),
        el('span', t.text, 'text'));
      return li;
    }));
    ui.turns.replaceChildren(...r.turns.map((turn, i) => {
      const tr = row([i + 1, offset(turn.at) || when(turn.at), ...STAGES.map(([key]) => ms(turn[key]))]);
      tr.className = 'turn';
      return tr;
    }));
    renderChart(r.turns);
  }

  // Grouped bars, one group a turn: each stage's milliseconds on a shared scale.
  function renderChart(turns) {
    if (!turns.length) {
      ui.chart.append(el('p', 'No agent turns were measured in this call.', 'muted'));
      return;
    }
    const bar = 12;
    const gap = 14;
    const left = 36;
    const top = 24;
    const height = 160;
    const groupWidth = STAGES.length * bar + gap;
    const width = left + turns.length * groupWidth + gap;
    const max = Math.max(1, ...turns.flatMap((t) => STAGES.map(([key]) => t[key] || 0)));
    const svg = document.createElementNS(SVG, 'svg');
    const w = Math.max(width, left + STAGES.length * 120);
    const svgHeight = top + height + 24;
    svg.setAttribute('viewBox', `0 0 ${w} ${svgHeight}`);
    svg.setAttribute('width', String(w));
    svg.setAttribute('height', String(svgHeight));
    const node = (tag, attrs, text) => {
      const n = document.createElementNS(SVG, tag);
      for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
      if (text !== undefined) n.textContent = text;
      return n;
    };
    const legend = node('g', { class: 'legend' });
    STAGES.forEach(([, label, cls], i) => {
      legend.append(node('rect', { x: left + i * 120, y: 4, width: 10, height: 10, class: cls }),
        node('text', { x: left + i * 120 + 14, y: 13 }, label));
    });
    const axis = node('g', { class: 'axis' });
    axis.append(node('text', { x: 0, y: top + 10 }, `${Math.round(max)}`),
      node('text', { x: 0, y: top + height }, '0'));
    svg.append(legend, axis);
    turns.forEach((turn, i) => {
      const g = node('g', { class: 'turn', 'data-turn': String(i + 1) });
      STAGES.forEach(([key, label, cls], j) => {
        const v = turn[key];
        if (v === null || v === undefined) return;
        const h = Math.max(1, (v / max) * height);
        const rect = node('rect', {
          x: left + i * groupWidth + j * bar, y: top + height - h, width: bar - 2, height: h,
          class: cls, 'data-stage': key,
        });
        rect.append(node('title', {}, `turn ${i + 1}: ${label} ${Math.round(v)} ms`));
        g.append(rect);
      });
      g.append(node('text', { x: left + i * groupWidth, y: top + height + 16 }, String(i + 1)));
      svg.append(g);
    });
    ui.chart.append(svg);
  }

  function renderDeliveries(list) {
    ui.deliveries.replaceChildren(...list.map((d) => {
      const tr = row([when(d.at), d.type, d.attempt, el('span', d.outcome, `outcome-${d.outcome}`),
        d.detail || '']);
      tr.className = 'delivery';
      tr.dataset.outcome = d.outcome;
      return tr;
    }));
    ui.deliveriesEmpty.hidden = list.length > 0;
  }

  // ---------------------------------------------------------------- start

  ui.apiKey.value = localStorage.getItem(KEY_STORAGE) || '';
  ui.form.addEventListener('submit', (e) => {
    e.preventDefault();
    loadSessions(false);
  });
  ui.more.addEventListener('click', () => loadSessions(true));
  const wanted = new URLSearchParams(window.location.search).get('session');
  if (ui.apiKey.value) {
    loadSessions(false).then(() => { if (wanted) showCall(wanted); });
  }
})();
