// The dashboard page: renders the samples the server pushes (server-sent
// events on /events) as one SVG axis of log positions, a table of nodes and
// consumers, and the timeline. Plain DOM and SVG, no framework. The values
// shown are also in data-* attributes, for tests and scripts to read.

(() => {
  const SVG = 'http://www.w3.org/2000/svg';
  const LABEL_WIDTH = 150;
  const RIGHT_MARGIN = 24;
  const AXIS_HEIGHT = 24;
  const NODE_ROW = 34;
  const CONSUMER_ROW = 24;
  const BAR = 12;
  /** Past this without a message from the server, the page says its data is old. */
  const STALE_MS = 5000;
  const MAX_EVENTS_SHOWN = 200;

  let sample = null;
  const events = [];
  const seen = new Set();
  let lastMessageAt = 0;

  const $ = (id) => document.getElementById(id);

  function svg(name, attributes, parent, text) {
    const element = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
    if (text !== undefined) element.textContent = text;
    if (parent) parent.appendChild(element);
    return element;
  }

  function html(name, attributes, parent, text) {
    const element = document.createElement(name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
    if (text !== undefined) element.textContent = text;
    if (parent) parent.appendChild(element);
    return element;
  }

  const number = (n) => n.toLocaleString('en-US');
  const clock = (ms) => new Date(ms).toLocaleTimeString('en-GB', { hour12: false });
  const ago = (ms) => (ms < 60000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60000)} min`);

  /** The leader's status, whose progress gives each follower's match index. */
  function leaderStatus(s) {
    if (s.leader === null) return null;
    const node = s.nodes.find((n) => n.up && n.status !== null && n.status.node === s.leader.id);
    return node ? node.status : null;
  }

  function matchIndexes(s) {
    const leader = leaderStatus(s);
    const match = new Map();
    if (leader === null) return match;
    for (const follower of leader.progress) match.set(follower.id, follower);
    match.set(leader.node, { matchIndex: leader.lastLogIndex, state: 'leader' });
    return match;
  }

  /** Round tick positions covering [lo, hi]. */
  function ticks(lo, hi, count) {
    const raw = (hi - lo) / count;
    const magnitude = 10 ** Math.floor(Math.log10(Math.max(raw, 1)));
    const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) || magnitude * 10;
    const out = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi; t += step) out.push(t);
    return out;
  }

  /** The part of the log worth showing: from the lowest position anything stands at to the highest last index. */
  function domain(s, match) {
    const positions = [];
    for (const node of s.nodes) {
      const st = node.status;
      if (st === null) continue;
      positions.push(st.firstLogIndex > 0 ? st.firstLogIndex - 1 : 0, st.lastLogIndex, st.appliedIndex);
      if (st.snapshotIndex > 0) positions.push(st.snapshotIndex);
    }
    // 0: a new leader has not heard from that follower yet, which says nothing about where its log is.
    for (const m of match.values()) if (m.matchIndex > 0) positions.push(m.matchIndex);
    for (const c of s.consumers ? s.consumers.consumers : []) positions.push(c.position);
    if (positions.length === 0) return [0, 10];
    let lo = Math.min(...positions);
    let hi = Math.max(...positions);
    if (hi - lo < 10) hi = lo + 10;
    const pad = (hi - lo) * 0.02;
    lo = Math.max(0, lo - pad);
    hi += pad;
    return [lo, hi];
  }

  function renderAxis(s) {
    const root = $('axis');
    root.replaceChildren();
    const width = root.clientWidth || 1000;
    const consumers = s.consumers ? s.consumers.consumers : [];
    const height = AXIS_HEIGHT + s.nodes.length * NODE_ROW + (consumers.length > 0 ? 8 + consumers.length * CONSUMER_ROW : 0) + 4;
    root.setAttribute('height', String(height));
    root.setAttribute('viewBox', `0 0 ${width} ${height}`);
    const defs = svg('defs', {}, root);
    const pattern = svg('pattern', { id: 'hatch', width: 4, height: 4, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' }, defs);
    svg('rect', { width: 4, height: 4, fill: '#ffffff' }, pattern);
    svg('rect', { width: 2, height: 4, fill: '#d6d9de' }, pattern);

    const match = matchIndexes(s);
    const [lo, hi] = domain(s, match);
    const x = (index) => LABEL_WIDTH + ((index - lo) / (hi - lo)) * (width - LABEL_WIDTH - RIGHT_MARGIN);
    const bottom = height - 2;

    for (const t of ticks(lo, hi, Math.max(3, Math.floor((width - LABEL_WIDTH) / 110)))) {
      const g = svg('g', { class: 'tick' }, root);
      svg('line', { x1: x(t), x2: x(t), y1: AXIS_HEIGHT - 6, y2: bottom }, g);
      svg('text', { x: x(t), y: AXIS_HEIGHT - 10, 'text-anchor': 'middle' }, g, number(t));
    }
    svg('text', { x: 8, y: AXIS_HEIGHT - 10, class: 'role' }, root, 'log index →');
    if (s.commitIndex > 0) {
      svg(
        'line',
        { x1: x(s.commitIndex), x2: x(s.commitIndex), y1: AXIS_HEIGHT - 4, y2: bottom, stroke: 'var(--committed)', 'stroke-dasharray': '3 3' },
        root,
      );
    }

    s.nodes.forEach((node, row) => {
      const top = AXIS_HEIGHT + row * NODE_ROW;
      const mid = top + NODE_ROW / 2;
      const g = svg('g', { 'data-node': node.id }, root);
      const st = node.status;
      svg('text', { x: 8, y: mid - 2, 'font-weight': 700 }, g, node.id + (s.leader && s.leader.id === node.id ? ' ★' : ''));
      if (!node.up) {
        svg(
          'text',
          { x: 8, y: mid + 11, class: 'down-label' },
          g,
          st === null ? 'DOWN · never answered' : `DOWN · seen ${ago(s.atMs - node.answeredAtMs)} ago`,
        );
      } else if (st !== null) {
        svg('text', { x: 8, y: mid + 11, class: 'role' }, g, `${st.role} · term ${st.term}${node.member ? '' : ' · not a member'}`);
      }
      if (st === null) return;
      const bars = svg('g', node.up ? {} : { class: 'down' }, g);
      const y = mid - BAR / 2;
      const span = (from, to, fill) => {
        const left = x(Math.max(lo, from));
        const right = x(Math.min(hi, to));
        if (right > left) svg('rect', { x: left, y, width: Math.max(1, right - left), height: BAR, fill }, bars);
      };
      const first = st.firstLogIndex > 0 ? st.firstLogIndex : 1;
      span(lo, first - 0.5, 'url(#hatch)');
      span(first - 0.5, st.lastLogIndex + 0.5, 'var(--log)');
      span(first - 0.5, Math.min(st.commitIndex, st.lastLogIndex) + 0.5, 'var(--committed)');
      if (st.lastLogIndex > st.commitIndex) span(st.commitIndex + 0.5, st.lastLogIndex + 0.5, 'var(--tail)');
      svg('line', { x1: x(st.appliedIndex), x2: x(st.appliedIndex), y1: y - 3, y2: y + BAR + 3, stroke: 'var(--applied)', 'stroke-width': 3 }, bars);
      if (st.snapshotIndex > 0) {
        const sx = x(st.snapshotIndex);
        svg('path', { d: `M${sx} ${y + BAR + 1} l5 5 l-5 5 l-5 -5 z`, fill: 'var(--snap)' }, bars);
      }
      const m = match.get(node.id);
      if (m !== undefined && m.state !== 'leader' && m.matchIndex > 0) {
        const mx = x(m.matchIndex);
        svg('path', { d: `M${mx - 5} ${y - 9} h10 l-5 7 z`, fill: 'var(--ink)' }, bars);
        const nearEnd = mx > width - RIGHT_MARGIN - 120;
        const label = `match ${number(m.matchIndex)}${m.state === 'replicate' ? '' : ` (${m.state})`}`;
        svg('text', { x: nearEnd ? mx - 8 : mx + 8, y: y - 3, class: 'role', 'text-anchor': nearEnd ? 'end' : 'start' }, bars, label);
      }
    });

    consumers.forEach((consumer, row) => {
      const top = AXIS_HEIGHT + s.nodes.length * NODE_ROW + 8 + row * CONSUMER_ROW;
      const mid = top + CONSUMER_ROW / 2;
      const g = svg('g', { 'data-consumer': consumer.name, class: s.consumers.stale ? 'down' : '' }, root);
      svg('text', { x: 8, y: mid + 4, fill: 'var(--consumer)' }, g, `⟳ ${consumer.name}`);
      const px = x(consumer.position);
      const cx = x(s.consumers.commitIndex);
      svg('line', { x1: px, x2: cx, y1: mid, y2: mid, stroke: 'var(--consumer)', 'stroke-dasharray': '4 3' }, g);
      svg('circle', { cx: px, cy: mid, r: 5, fill: 'var(--consumer)' }, g);
      const label = `${number(consumer.position)} · lag ${number(consumer.lag)}`;
      const left = px > LABEL_WIDTH + 140;
      svg('text', { x: left ? px - 9 : px + 9, y: mid + 4, 'text-anchor': left ? 'end' : 'start' }, g, label);
    });
  }

  function renderSummary(s) {
    const summary = $('summary');
    const up = s.nodes.filter((n) => n.up).length;
    summary.dataset.leader = s.leader ? s.leader.id : '';
    summary.dataset.term = String(s.term);
    summary.dataset.commit = String(s.commitIndex);
    summary.dataset.up = String(up);
    summary.replaceChildren();
    const fact = (label, value) => {
      const span = html('span', { class: 'fact' }, summary, `${label} `);
      html('b', {}, span, value);
    };
    fact('leader', s.leader ? s.leader.id : 'none');
    fact('term', String(s.term));
    fact('commit', number(s.commitIndex));
    fact('nodes up', `${up} of ${s.nodes.length}`);
    fact('members', s.members.map((m) => (m.role === 'voter' ? m.id : `${m.id} (learner)`)).join(', ') || '?');
  }

  function renderNodes(s) {
    const rows = $('node-rows');
    rows.replaceChildren();
    const match = matchIndexes(s);
    // Equal applied indexes must have equal digests (state machine replication); a difference is marked.
    const digestsAt = new Map();
    for (const n of s.nodes) {
      if (!n.up || n.status === null) continue;
      const digests = digestsAt.get(n.status.appliedIndex) || new Set();
      digests.add(n.status.digest);
      digestsAt.set(n.status.appliedIndex, digests);
    }
    for (const node of s.nodes) {
      const st = node.status;
      const m = match.get(node.id);
      const tr = html('tr', { class: node.up ? 'up' : 'down', 'data-node': node.id, 'data-state': node.up ? 'up' : 'down' }, rows);
      if (st !== null) {
        Object.assign(tr.dataset, {
          role: st.role,
          term: st.term,
          leader: st.leader || '',
          first: st.firstLogIndex,
          snapshot: st.snapshotIndex,
          applied: st.appliedIndex,
          commit: st.commitIndex,
          last: st.lastLogIndex,
          digest: st.digest,
        });
      }
      if (m !== undefined) tr.dataset.match = String(m.matchIndex);
      html('td', {}, tr, node.id);
      html(
        'td',
        { class: 'text state', title: node.error || '' },
        tr,
        node.up ? 'up' : st === null ? 'DOWN' : `DOWN · seen ${ago(s.atMs - node.answeredAtMs)} ago`,
      );
      if (st === null) {
        html('td', { class: 'text', colspan: 10 }, tr, node.error || '');
        continue;
      }
      html('td', { class: st.role === 'leader' ? 'text leader-role' : 'text' }, tr, st.role + (node.member ? '' : ' (not a member)'));
      html('td', {}, tr, String(st.term));
      html('td', { class: 'text' }, tr, st.leader || '–');
      for (const value of [st.firstLogIndex, st.snapshotIndex, st.appliedIndex, st.commitIndex, st.lastLogIndex]) html('td', {}, tr, number(value));
      html('td', { title: m ? `${m.state}${m.inflight ? `, ${m.inflight} in flight` : ''}` : '' }, tr, m ? number(m.matchIndex) : '–');
      const mismatch = node.up && (digestsAt.get(st.appliedIndex) || new Set()).size > 1;
      const td = html('td', { class: mismatch ? 'text mismatch' : 'text', title: st.digest }, tr);
      html('code', {}, td, st.digest.slice(0, 10));
    }

    const consumerRows = $('consumer-rows');
    consumerRows.replaceChildren();
    const list = s.consumers ? s.consumers.consumers : [];
    if (list.length === 0) {
      html('td', { colspan: 4, class: 'text empty' }, html('tr', {}, consumerRows), 'no durable consumers');
    }
    for (const c of list) {
      const tr = html('tr', { 'data-consumer': c.name, 'data-position': c.position, 'data-lag': c.lag }, consumerRows);
      html('td', {}, tr, c.name);
      html('td', {}, tr, number(c.position));
      html('td', {}, tr, number(c.lag));
      html('td', {}, tr, c.committedAtMs > 0 ? `${ago(c.msSinceCommit)} ago` : '–');
    }
  }

  function renderEvents() {
    const list = $('events');
    list.replaceChildren();
    if (events.length === 0) html('li', { class: 'empty' }, list, 'nothing yet');
    for (const event of events.slice(-MAX_EVENTS_SHOWN).reverse()) {
      const li = html('li', { 'data-kind': event.kind, 'data-node': event.node || '', 'data-term': event.term }, list);
      html('time', {}, li, clock(event.atMs));
      html('span', { class: `kind ${event.kind}` }, li, event.kind);
      html('span', {}, li, event.message);
      html('span', { class: 'at', title: 'commit index when it was seen' }, li, `@${number(event.index)}`);
    }
  }

  function render() {
    if (sample === null) return;
    renderSummary(sample);
    renderAxis(sample);
    renderNodes(sample);
  }

  function receive(message) {
    lastMessageAt = Date.now();
    if (message.sample !== null) sample = message.sample;
    let added = false;
    for (const event of message.events) {
      if (seen.has(event.seq)) continue;
      seen.add(event.seq);
      events.push(event);
      added = true;
    }
    render();
    if (added || events.length === 0) renderEvents();
    document.body.dataset.updated = String(lastMessageAt);
  }

  const stream = new EventSource('/events');
  const connection = $('connection');
  stream.addEventListener('hello', (e) => receive(JSON.parse(e.data)));
  stream.addEventListener('sample', (e) => receive(JSON.parse(e.data)));
  stream.addEventListener('open', () => {
    connection.textContent = 'live';
    connection.className = 'connection';
  });
  setInterval(() => {
    const quiet = Date.now() - lastMessageAt;
    if (lastMessageAt > 0 && quiet > STALE_MS) {
      connection.textContent = `no update from the dashboard server for ${ago(quiet)}: values may be old`;
      connection.className = 'connection lost';
    } else if (lastMessageAt > 0) {
      connection.textContent = `live · updated ${clock(lastMessageAt)}`;
      connection.className = 'connection';
    }
  }, 1000);
  window.addEventListener('resize', render);
})();
