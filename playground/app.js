// Playground client: asks the API for a session, joins its LiveKit room with the microphone,
// plays the agent, shows live transcripts and the session status, and ends the session.
(() => {
  'use strict';

  const LK = window.LivekitClient;
  // The page lives at <base>/playground, so the API routes are its siblings.
  const API_BASE = new URL('.', window.location.href);
  const KEY_STORAGE = 'voice-playground.api-key';
  const POLL_MS = 2000;
  const TERMINAL = new Set(['ended', 'expired', 'failed']);
  const TRANSCRIPTION_TOPIC = 'lk.transcription';
  const ATTR_SEGMENT_ID = 'lk.segment_id';
  const ATTR_FINAL = 'lk.transcription_final';
  const ATTR_AGENT_STATE = 'lk.agent.state';
  // The control plane tells the caller about the session on this data topic (e.g. no agent came).
  const SESSION_TOPIC = 'voice.session';
  // The agent writes its report as the call closes, a few seconds after the session ends.
  const REPORT_TRIES = 20;

  const $ = (id) => document.getElementById(id);
  const ui = {
    form: $('call-form'),
    apiKey: $('api-key'),
    agentType: $('agent-type'),
    agentId: $('agent-id'),
    agentVersion: $('agent-version'),
    loadAgents: $('load-agents'),
    agentVersionShown: $('agent-version-shown'),
    voiceProfile: $('voice-profile'),
    greeting: $('greeting'),
    record: $('record'),
    instructions: $('instructions'),
    variables: $('variables'),
    report: $('report'),
    reportStatus: $('report-status'),
    recording: $('recording'),
    usage: $('usage'),
    savedTranscript: $('saved-transcript'),
    start: $('start'),
    end: $('end'),
    unmuteAudio: $('unmute-audio'),
    error: $('error'),
    notice: $('notice'),
    status: $('status'),
    agentJoined: $('agent-joined'),
    agentState: $('agent-state'),
    connection: $('connection'),
    mic: $('mic'),
    sessionId: $('session-id'),
    roomName: $('room-name'),
    ended: $('ended'),
    transcript: $('transcript'),
    transcriptEmpty: $('transcript-empty'),
    audio: $('agent-audio'),
  };

  let room = null;
  let session = null; // the POST /session response
  let pollTimer = null;
  const segments = new Map(); // segment id -> <li>

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(method, path, body) {
    const headers = { 'X-API-Key': ui.apiKey.value.trim() };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let resp;
    try {
      resp = await fetch(new URL(path, API_BASE), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiError(0, 'network_error', `the API did not answer: ${err.message}`);
    }
    const data = await resp.json().catch(() => null);
    if (!resp.ok) {
      const code = (data && data.error) || `http_${resp.status}`;
      const message = (data && data.message) || resp.statusText || 'request failed';
      throw new ApiError(resp.status, code, message);
    }
    return data;
  }

  // ---------------------------------------------------------------- view

  function showError(err) {
    if (!err) {
      ui.error.hidden = true;
      ui.error.textContent = '';
      return;
    }
    ui.error.textContent = err.code ? `${err.code}: ${err.message}` : String(err.message || err);
    ui.error.hidden = false;
  }

  function setStatus(status) {
    ui.status.textContent = status;
    ui.status.dataset.status = status;
  }

  function renderSession(s) {
    setStatus(s.status);
    ui.sessionId.textContent = s.session_id;
    ui.roomName.textContent = s.room_name;
    if ('agent_id' in s) {
      ui.agentVersionShown.textContent = s.agent_id ? `${s.agent_id} v${s.agent_version}` : 'config file';
    }
    if ('agent_joined' in s) {
      ui.agentJoined.textContent = s.agent_joined ? `joined ${timeOf(s.agent_joined_at)}` : 'not joined';
      ui.agentJoined.dataset.joined = String(Boolean(s.agent_joined));
    }
    if (s.ended_at) {
      const reason = s.end_reason ? ` (${s.end_reason})` : '';
      const duration = s.usage && s.usage.duration_seconds != null
        ? `, ${s.usage.duration_seconds.toFixed(1)} s` : '';
      ui.ended.textContent = `${timeOf(s.ended_at)}${reason}${duration}`;
    }
  }

  function timeOf(iso) {
    return iso ? new Date(iso).toLocaleTimeString() : '';
  }

  function setBusy(inCall) {
    ui.start.disabled = inCall;
    ui.end.disabled = !inCall;
    for (const el of [ui.apiKey, ui.agentType, ui.voiceProfile, ui.greeting, ui.record,
      ui.instructions, ui.variables]) el.disabled = inCall;
  }

  function resetView() {
    segments.clear();
    ui.transcript.replaceChildren();
    ui.transcriptEmpty.hidden = false;
    for (const el of [ui.sessionId, ui.roomName, ui.ended, ui.agentState, ui.agentVersionShown]) {
      el.textContent = '–';
    }
    ui.agentJoined.textContent = 'not joined';
    ui.agentJoined.dataset.joined = 'false';
    ui.report.hidden = true;
    ui.savedTranscript.replaceChildren();
    ui.usage.textContent = '';
    ui.recording.hidden = true;
    ui.recording.removeAttribute('src');
  }

  // ---------------------------------------------------------------- after the call

  // GET /session/{id}/transcript answers 404 until the report exists: ask again for a while.
  async function loadReport(sessionId) {
    ui.report.hidden = false;
    ui.reportStatus.textContent = "Waiting for the agent's report…";
    for (let i = 0; i < REPORT_TRIES; i += 1) {
      if (!session || session.session_id !== sessionId) return;
      try {
        renderReport(await api('GET', `session/${encodeURIComponent(sessionId)}/transcript`));
        return;
      } catch (err) {
        if (!(err instanceof ApiError) || err.status !== 404) {
          ui.reportStatus.textContent = `${err.code}: ${err.message}`;
          return;
        }
      }
      await new Promise((resolve) => window.setTimeout(resolve, POLL_MS));
    }
    ui.reportStatus.textContent = 'No report for this call (did the agent join?).';
  }

  function renderReport(r) {
    ui.reportStatus.textContent = `Ended (${r.end_reason || 'unknown'}), ${r.transcript.length} lines.`;
    ui.savedTranscript.replaceChildren(...r.transcript.map((t) => {
      const li = document.createElement('li');
      li.className = `line ${t.role === 'user' ? 'caller' : 'agent'}`;
      li.dataset.role = t.role;
      const label = document.createElement('span');
      label.className = 'who';
      label.textContent = `${t.role === 'user' ? 'You' : 'Agent'} · ${timeOf(t.started_at)}`;
      const text = document.createElement('span');
      text.className = 'text';
      text.textContent = t.text;
      li.append(label, text);
      return li;
    }));
    const u = r.usage || {};
    ui.usage.textContent = `STT ${u.stt_audio_seconds ?? 0} s · LLM ${u.llm_prompt_tokens ?? 0} + `
      + `${u.llm_completion_tokens ?? 0} tokens · TTS ${u.tts_characters ?? 0} characters`;
    if (r.recording_url) {
      ui.recording.src = r.recording_url;
      ui.recording.hidden = false;
    }
  }

  function parseVariables(text) {
    const vars = {};
    for (const line of text.split('\n')) {
      const at = line.indexOf('=');
      if (at > 0) vars[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
    return vars;
  }

  // ---------------------------------------------------------------- transcripts

  // The agent publishes both sides on one topic: the caller's lines are sent on the caller's
  // behalf (sender = caller identity), the agent's under its own identity. A segment id groups
  // the interim and final streams of one utterance, so a line is keyed by it.
  function onTranscription(reader, participantInfo) {
    const attrs = reader.info.attributes || {};
    const segmentId = attrs[ATTR_SEGMENT_ID] || reader.info.id;
    const fromCaller = room && participantInfo.identity === room.localParticipant.identity;
    const line = lineFor(segmentId, fromCaller ? 'caller' : 'agent');
    line.classList.toggle('interim', attrs[ATTR_FINAL] !== 'true');

    (async () => {
      let text = '';
      try {
        for await (const chunk of reader) {
          text += chunk;
          setLineText(line, text);
        }
      } catch (err) {
        console.warn('transcription stream broke', err);
      }
      const final = (reader.info.attributes || {})[ATTR_FINAL];
      if (!fromCaller || final === 'true') line.classList.remove('interim');
    })();
  }

  function lineFor(segmentId, who) {
    let line = segments.get(segmentId);
    if (line) return line;
    line = document.createElement('li');
    line.className = `line ${who}`;
    line.dataset.segment = segmentId;
    const label = document.createElement('span');
    label.className = 'who';
    label.textContent = who === 'caller' ? 'You' : 'Agent';
    const text = document.createElement('span');
    text.className = 'text';
    line.append(label, text);
    segments.set(segmentId, line);
    ui.transcript.append(line);
    ui.transcriptEmpty.hidden = true;
    line.scrollIntoView({ block: 'nearest' });
    return line;
  }

  function setLineText(line, text) {
    line.querySelector('.text').textContent = text.trim();
  }

  // ---------------------------------------------------------------- room

  function wireRoom(r) {
    const E = LK.RoomEvent;
    r.on(E.TrackSubscribed, (track) => {
      if (track.kind === LK.Track.Kind.Audio) track.attach(ui.audio);
    });
    r.on(E.TrackUnsubscribed, (track) => track.detach());
    r.on(E.AudioPlaybackStatusChanged, () => {
      ui.unmuteAudio.hidden = r.canPlaybackAudio;
    });
    r.on(E.ConnectionStateChanged, (state) => {
      ui.connection.textContent = state;
    });
    r.on(E.ParticipantAttributesChanged, (changed, participant) => {
      if (participant !== r.localParticipant && ATTR_AGENT_STATE in changed) {
        ui.agentState.textContent = changed[ATTR_AGENT_STATE];
      }
    });
    r.on(E.LocalTrackPublished, () => {
      ui.mic.textContent = r.localParticipant.isMicrophoneEnabled ? 'on' : 'off';
    });
    r.on(E.Disconnected, () => {
      ui.connection.textContent = 'disconnected';
      ui.mic.textContent = 'off';
      ui.agentState.textContent = '–';
      // The room went away under us (ended elsewhere): one last poll shows why.
      if (session && room === r) refreshStatus();
      room = null;
      setBusy(false);
    });
    r.on(E.DataReceived, (payload, _participant, _kind, topic) => {
      if (topic === SESSION_TOPIC) onSessionNotice(payload);
    });
    r.registerTextStreamHandler(TRANSCRIPTION_TOPIC, onTranscription);
  }

  function onSessionNotice(payload) {
    let notice;
    try {
      notice = JSON.parse(new TextDecoder().decode(payload));
    } catch {
      return;
    }
    if (notice.status) setStatus(notice.status);
    if (notice.end_reason) ui.ended.textContent = `now (${notice.end_reason})`;
    ui.notice.textContent = notice.message || '';
    ui.notice.hidden = !notice.message;
  }

  // ---------------------------------------------------------------- status polling

  async function refreshStatus() {
    if (!session) return;
    try {
      const s = await api('GET', `session/${encodeURIComponent(session.session_id)}`);
      renderSession(s);
      if (TERMINAL.has(s.status) && pollTimer !== null) {
        stopPolling();
        loadReport(s.session_id);
      }
    } catch (err) {
      showError(err);
    }
  }

  function startPolling() {
    stopPolling();
    pollTimer = window.setInterval(refreshStatus, POLL_MS);
  }

  function stopPolling() {
    if (pollTimer !== null) window.clearInterval(pollTimer);
    pollTimer = null;
  }

  // ---------------------------------------------------------------- actions

  async function startCall(event) {
    event.preventDefault();
    showError(null);
    ui.notice.hidden = true;
    const key = ui.apiKey.value.trim();
    if (!key) {
      showError({ code: 'missing_api_key', message: 'type an API key (make dev prints one)' });
      return;
    }
    window.localStorage.setItem(KEY_STORAGE, key);
    setBusy(true);
    resetView();
    session = null;
    setStatus('creating');

    const body = { initial_greeting: ui.greeting.checked };
    if (ui.agentId.value) {
      // The version decides the agent type (and the rest), as the config file does otherwise.
      body.agent_id = ui.agentId.value;
      if (ui.agentVersion.value) body.agent_version = Number(ui.agentVersion.value);
    } else {
      body.agent_type = ui.agentType.value;
    }
    const profile = ui.voiceProfile.value.trim();
    if (profile) body.voice_profile = profile;
    if (ui.record.checked) body.record = true;
    const instructions = ui.instructions.value.trim();
    if (instructions) body.instructions = instructions;
    const variables = parseVariables(ui.variables.value);
    if (Object.keys(variables).length) body.variables = variables;

    try {
      session = await api('POST', 'session', body);
      renderSession(session);
      startPolling();

      const r = new LK.Room({ adaptiveStream: true, dynacast: true });
      room = r;
      wireRoom(r);
      await r.connect(session.url, session.token);
      // Clicking Start is the user gesture browsers want before they play audio.
      await r.startAudio().catch(() => {});
      await r.localParticipant.setMicrophoneEnabled(true);
      ui.mic.textContent = 'on';
      refreshStatus();
    } catch (err) {
      showError(err);
      await leaveRoom();
      if (session) {
        // Joining failed: end the session at once so it does not hold one of the user's slots.
        stopPolling();
        const s = await api('DELETE', `session/${encodeURIComponent(session.session_id)}`)
          .catch(() => null);
        if (s) renderSession(s);
      } else {
        setStatus('idle');
      }
    }
  }

  async function leaveRoom() {
    const r = room;
    room = null;
    if (r) await r.disconnect().catch(() => {});
    setBusy(false);
  }

  async function endCall() {
    showError(null);
    ui.end.disabled = true;
    const current = session;
    await leaveRoom();
    if (!current) return;
    try {
      renderSession(await api('DELETE', `session/${encodeURIComponent(current.session_id)}`));
    } catch (err) {
      showError(err);
    }
    await refreshStatus();
    stopPolling();
  }

  // ---------------------------------------------------------------- agents

  function option(value, text) {
    const o = document.createElement('option');
    o.value = value;
    o.textContent = text;
    return o;
  }

  async function loadAgents() {
    showError(null);
    try {
      const { agents } = await api('GET', 'agents');
      ui.agentId.replaceChildren(option('', "the config file's agent"));
      for (const a of agents) ui.agentId.append(option(a.agent_id, `${a.name} (${a.agent_id})`));
      if (!agents.length) showError({ code: 'no_agents', message: 'this key has no agents yet: POST /voice/realtime/agents' });
    } catch (err) {
      showError(err);
    }
    await loadVersions();
  }

  async function loadVersions() {
    ui.agentVersion.replaceChildren(option('', 'as the traffic split picks'));
    ui.agentVersion.disabled = !ui.agentId.value;
    ui.agentType.disabled = Boolean(ui.agentId.value);
    if (!ui.agentId.value) return;
    try {
      const { versions } = await api('GET', `agents/${encodeURIComponent(ui.agentId.value)}/versions`);
      for (const v of versions) {
        ui.agentVersion.append(option(String(v.version), `v${v.version}${v.note ? `: ${v.note}` : ''}`));
      }
    } catch (err) {
      showError(err);
    }
  }

  // ---------------------------------------------------------------- start-up

  if (!LK) {
    showError({ code: 'missing_client', message: 'livekit-client did not load: run `make playground`' });
    ui.start.disabled = true;
    return;
  }
  ui.apiKey.value = window.localStorage.getItem(KEY_STORAGE) || '';
  ui.form.addEventListener('submit', startCall);
  ui.end.addEventListener('click', endCall);
  ui.loadAgents.addEventListener('click', loadAgents);
  ui.agentId.addEventListener('change', loadVersions);
  ui.unmuteAudio.addEventListener('click', () => room && room.startAudio());
  window.addEventListener('beforeunload', () => {
    if (room) room.disconnect();
  });
})();
