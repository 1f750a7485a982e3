// gossipmesh dashboard: vanilla JS and SVG, no framework, no build step.
//
// One model serves both modes. A message holds, per node, the first copy's
// hop, sender, latency and duplicates, plus "at": the time on the display
// clock when the node lights up. Live, the display clock is the page's
// clock and "at" is spaced hop by hop so that people can follow the spread;
// in replay it is the trace's virtual time. render(now) draws the state at
// one instant, so animation, pausing and scrubbing are the same code.
'use strict';
(() => {
  const $ = (s) => document.querySelector(s);
  const NS = 'http://www.w3.org/2000/svg';
  const W = 640, H = 460, MAX_MSGS = 50;
  const reduced = matchMedia('(prefers-reduced-motion: reduce)').matches;

  const S = {
    replay: false,
    n: 0, ids: [], links: [], adj: [], pos: [], r: 16,
    nodes: [],          // live: rows of /api/nodes
    faults: null,       // live: GET /api/faults, when the mesh takes faults
    adv: [],            // live: per node {mode, stats} from GET /api/adversaries
    cut: new Set(),     // 'a-b' for each cut link (a < b)
    linkEls: [],        // the link lines, in S.links order
    downEv: [],         // replay: per node [[at, down]…]
    msgs: new Map(),    // id → message, oldest first
    pinned: '',         // message chosen in the select; '' follows the newest
    newest: '',
    step: 250,          // display ms per hop when animating
    animate: !reduced,
    vnow: 0, vend: 0, rate: 1, playing: false, last: 0,
    dirty: true, msgsChanged: true, raf: 0,
    els: null,
  };

  function svg(tag, attrs, parent) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function h(tag, props, parent) {
    const e = document.createElement(tag);
    Object.assign(e, props);
    if (parent) parent.appendChild(e);
    return e;
  }
  const short = (id) => (id || '').slice(0, 8);
  const fmt = (x) => (x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0));
  const clock = () => (S.replay ? S.vnow : performance.now());
  function setStatus(text, bad) {
    const s = $('#status');
    s.textContent = text;
    s.classList.toggle('bad', !!bad);
  }

  // Every state-changing request carries this launch's token (from the
  // page's meta tag) and a JSON content type: the server refuses a POST
  // without them, which is what keeps other web pages out.
  const token = document.querySelector('meta[name="mesh-token"]')?.content || '';
  async function getJSON(url, opts) {
    if (opts && opts.method && opts.method !== 'GET') {
      opts = { ...opts, headers: { 'Content-Type': 'application/json', ...opts.headers, 'X-Mesh-Token': token } };
    }
    const res = await fetch(url, opts);
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.error || res.status + ' ' + res.statusText);
    return body;
  }

  // ---- topology and layout ----

  function setTopology(n, ids, links) {
    S.n = n; S.ids = ids; S.links = links;
    S.adj = Array.from({ length: n }, () => []);
    for (const [a, b] of links) { S.adj[a].push(b); S.adj[b].push(a); }
    // A mesh too large to draw node by node, or one whose links cannot be
    // laid out without running under other nodes at a readable size, is
    // shown aggregated by hop instead.
    const lay = n <= MAX_DRAWN ? layoutGraph(n, links) : null;
    S.agg = !lay;
    S.aggWhy = n > MAX_DRAWN ? `more than ${MAX_DRAWN}, too many to draw one by one` : 'too densely linked to draw without links under other nodes';
    document.body.classList.toggle('aggregate', S.agg);
    if (lay) { S.pos = lay.pos; S.r = lay.r; } else { S.pos = []; S.r = 0; }
    drawGraph();
    buildTable();
    const sel = $('#pub-node');
    sel.replaceChildren();
    for (let i = 0; i < n; i++) h('option', { value: i, textContent: 'node ' + i + ' (' + short(ids[i]) + ')' }, sel);
    const asel = $('#adv-node');
    asel.replaceChildren();
    for (let i = 0; i < n; i++) h('option', { value: i, textContent: 'node ' + i + ' (' + short(ids[i]) + ')' }, asel);
  }

  // ---- layout ----
  //
  // The drawing must never run a link under a node that is not one of its
  // ends: a reader would take it for a link to that node. layoutGraph
  // starts from a force layout, then pushes every node off the links that
  // pass too close to it, and checks the result; if some link still runs
  // within PAD of a node's edge, it tries again with smaller nodes, down
  // to MIN_R, and past that gives up (null): the page then shows the mesh
  // aggregated by hop. Meshes of up to about 50 nodes with 3 peers each
  // draw; dense graphs of a hundred nodes and more mostly do not.

  const MAX_DRAWN = 200, MIN_R = 2.5, PAD = 2, M = 24, EDGE = 21, LAYOUT_WORK = 40000;

  function nominalRadius(n) { return n <= 30 ? 16 : Math.max(MIN_R, 16 * Math.sqrt(30 / n)); }

  // segDist is the distance from point p to the segment a-b, and the
  // point of the segment nearest to p.
  function segDist(p, a, b) {
    const dx = b[0] - a[0], dy = b[1] - a[1], L = dx * dx + dy * dy;
    let t = L > 0 ? ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / L : 0;
    t = Math.max(0, Math.min(1, t));
    const q = [a[0] + t * dx, a[1] + t * dy];
    return [Math.hypot(p[0] - q[0], p[1] - q[1]), q];
  }

  // edgeUnderNode lists every (link, node) pair where the link passes
  // within clear of a node that is not one of its ends.
  function edgeUnderNode(pos, links, clear) {
    const bad = [];
    links.forEach(([a, b], k) => {
      const x0 = Math.min(pos[a][0], pos[b][0]) - clear, x1 = Math.max(pos[a][0], pos[b][0]) + clear;
      const y0 = Math.min(pos[a][1], pos[b][1]) - clear, y1 = Math.max(pos[a][1], pos[b][1]) + clear;
      for (let i = 0; i < pos.length; i++) {
        if (i === a || i === b) continue;
        const p = pos[i];
        if (p[0] < x0 || p[0] > x1 || p[1] < y0 || p[1] > y1) continue;
        const [d] = segDist(p, pos[a], pos[b]);
        if (d < clear) bad.push({ link: k, node: i, d });
      }
    });
    return bad;
  }

  // overlaps lists the pairs of nodes closer than minD centre to centre.
  function overlaps(pos, minD) {
    const out = [];
    for (let i = 0; i < pos.length; i++) for (let j = i + 1; j < pos.length; j++) {
      if (Math.hypot(pos[i][0] - pos[j][0], pos[i][1] - pos[j][1]) < minD) out.push([i, j]);
    }
    return out;
  }

  // forceLayout is Fruchterman–Reingold from a circle: deterministic, so
  // the same mesh is drawn the same way on every load.
  function forceLayout(n, links) {
    const pos = [], R = Math.min(W, H) / 2 - M;
    for (let i = 0; i < n; i++) {
      const a = (2 * Math.PI * i) / n - Math.PI / 2;
      pos.push([W / 2 + R * Math.cos(a), H / 2 + R * Math.sin(a)]);
    }
    if (n < 4) return pos;
    const k = Math.sqrt((W * H) / n) * 0.7;
    let t = W / 10;
    for (let it = 0; it < 300; it++) {
      const d = pos.map(() => [0, 0]);
      for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) {
        const dx = pos[i][0] - pos[j][0], dy = pos[i][1] - pos[j][1];
        const dist = Math.max(Math.hypot(dx, dy), 0.01), f = (k * k) / dist / dist;
        d[i][0] += dx * f; d[i][1] += dy * f; d[j][0] -= dx * f; d[j][1] -= dy * f;
      }
      for (const [a, b] of links) {
        const dx = pos[a][0] - pos[b][0], dy = pos[a][1] - pos[b][1];
        const dist = Math.max(Math.hypot(dx, dy), 0.01), f = dist / k;
        d[a][0] -= dx * f; d[a][1] -= dy * f; d[b][0] += dx * f; d[b][1] += dy * f;
      }
      for (let i = 0; i < n; i++) {
        const len = Math.max(Math.hypot(d[i][0], d[i][1]), 0.01), m = Math.min(len, t) / len;
        pos[i][0] += d[i][0] * m; pos[i][1] += d[i][1] * m;
      }
      t *= 0.985;
    }
    return fit(pos);
  }

  // fit scales and centres the drawing into the box, margin M.
  function fit(pos) {
    const xs = pos.map((p) => p[0]), ys = pos.map((p) => p[1]);
    const x0 = Math.min(...xs), y0 = Math.min(...ys), wx = Math.max(Math.max(...xs) - x0, 1), wy = Math.max(Math.max(...ys) - y0, 1);
    const s = Math.min((W - 2 * M) / wx, (H - 2 * M) / wy);
    return pos.map(([x, y]) => [M + (x - x0) * s + (W - 2 * M - wx * s) / 2, M + (y - y0) * s + (H - 2 * M - wy * s) / 2]);
  }

  // untangle moves each node that a link runs under off that link, a
  // little further than needed, and parts nodes that overlap, for a
  // bounded number of rounds; it reports whether the drawing came out
  // clean: no link within clear of a node not its end, no two nodes
  // closer than 2 × (clear − PAD) + PAD.
  function untangle(pos, links, clear) {
    const minD = 2 * (clear - PAD) + PAD;
    const clamp = (p) => {
      // Inside the box with room for the largest node and its ring.
      p[0] = Math.max(EDGE, Math.min(W - EDGE, p[0]));
      p[1] = Math.max(EDGE, Math.min(H - EDGE, p[1]));
    };
    for (let round = 0; round < 200; round++) {
      const bad = edgeUnderNode(pos, links, clear), close = overlaps(pos, minD);
      if (!bad.length && !close.length) return true;
      for (const [i, j] of close) {
        const p = pos[i], q = pos[j];
        let dx = q[0] - p[0], dy = q[1] - p[1], d = Math.hypot(dx, dy);
        if (d < 1e-6) { dx = 1; dy = (i % 3) - 1; d = Math.hypot(dx, dy); }
        const step = (minD - d) / 2 + 0.5;
        p[0] -= (dx / d) * step; p[1] -= (dy / d) * step; clamp(p);
        q[0] += (dx / d) * step; q[1] += (dy / d) * step; clamp(q);
      }
      for (const { link, node } of bad) {
        const [a, b] = links[link], p = pos[node];
        const [d, q] = segDist(p, pos[a], pos[b]);
        if (d >= clear) continue; // an earlier move fixed it
        let ux, uy;
        if (d > 1e-6) { ux = (p[0] - q[0]) / d; uy = (p[1] - q[1]) / d; } else {
          // On the line: step off it at a right angle, to a side that
          // depends on the node, so that two stuck nodes part.
          const dx = pos[b][0] - pos[a][0], dy = pos[b][1] - pos[a][1], L = Math.hypot(dx, dy) || 1, sgn = node % 2 ? 1 : -1;
          ux = (-dy / L) * sgn; uy = (dx / L) * sgn;
        }
        // The node moves off the link, and the link's ends move the other
        // way, each by a share of the gap.
        const step = (clear - d) * 0.6 + 0.5;
        p[0] += ux * step; p[1] += uy * step; clamp(p);
        for (const e of [a, b]) { pos[e][0] -= ux * step * 0.3; pos[e][1] -= uy * step * 0.3; clamp(pos[e]); }
      }
    }
    return edgeUnderNode(pos, links, clear).length === 0 && overlaps(pos, minD).length === 0;
  }

  // layoutGraph returns {pos, r}: node centres and a radius such that no
  // link passes within r + PAD of a node that is not one of its ends; or
  // null when that needs nodes smaller than MIN_R.
  function layoutGraph(n, links) {
    // Past this much work the answer is no anyway (dense random graphs of
    // a hundred nodes and more), and the page would stall finding out.
    if (n * links.length > LAYOUT_WORK) return null;
    const base = forceLayout(n, links);
    for (let r = nominalRadius(n); r >= MIN_R; r *= 0.8) {
      const pos = base.map((p) => p.slice());
      if (untangle(pos, links, r + PAD)) return { pos, r };
    }
    return null;
  }

  // For the layout test (web/layout_browser_test.go): the layout and its
  // check, as the page uses them.
  window.gossipmeshLayout = Object.freeze({ layoutGraph, edgeUnderNode, PAD, MIN_R, MAX_DRAWN, LAYOUT_WORK });

  function drawGraph() {
    const gl = $('#g-links'), gt = $('#g-tree'), gn = $('#g-nodes');
    gl.replaceChildren(); gt.replaceChildren(); gn.replaceChildren();
    S.els = [];
    S.linkEls = [];
    if (S.agg) return;
    for (const [a, b] of S.links) {
      const l = svg('line', { class: 'link', x1: S.pos[a][0], y1: S.pos[a][1], x2: S.pos[b][0], y2: S.pos[b][1], 'data-a': a, 'data-b': b }, gl);
      S.linkEls.push({ l, cls: 'link' });
    }
    for (let i = 0; i < S.n; i++) {
      const [x, y] = S.pos[i];
      const tree = svg('line', { class: 'tree', visibility: 'hidden' }, gt);
      const g = svg('g', { 'data-index': i }, gn);
      const title = svg('title', {}, g);
      const ring = svg('circle', { class: 'origin-ring', cx: x, cy: y, r: S.r + 4, visibility: 'hidden' }, g);
      const flash = svg('circle', { class: 'flash', cx: x, cy: y, r: S.r, visibility: 'hidden' }, g);
      const c = svg('circle', { class: 'node', cx: x, cy: y, r: S.r }, g);
      const q = S.r * 0.55;
      const cross = svg('path', { class: 'x', d: `M${x - q} ${y - q}l${2 * q} ${2 * q}m0 ${-2 * q}l${-2 * q} ${2 * q}`, visibility: 'hidden' }, g);
      const pq = S.r * 0.3;
      const pause = svg('path', { class: 'pause-mark', d: `M${x - pq} ${y - 1.3 * pq}v${2.6 * pq}M${x + pq} ${y - 1.3 * pq}v${2.6 * pq}`, visibility: 'hidden' }, g);
      const label = S.r >= 9 ? svg('text', { class: 'label', x, y }, g) : null;
      if (label) label.textContent = i;
      // An adversary gets a dashed diamond around it and its mode below.
      // The label goes above a node at the bottom edge, and is anchored
      // inward at the side edges, so that it stays inside the drawing.
      const d = Math.SQRT2 * S.r + 3; // the diamond clears the circle
      const advMark = svg('path', { class: 'adv-mark', d: `M${x} ${y - d}L${x + d} ${y}L${x} ${y + d}L${x - d} ${y}Z`, visibility: 'hidden' }, g);
      const anchor = x < 60 ? 'start' : x > W - 60 ? 'end' : 'middle';
      const lx = anchor === 'start' ? Math.max(2, x - d) : anchor === 'end' ? Math.min(W - 2, x + d) : x;
      const ly = y + d + 12 <= H - 2 ? y + d + 12 : y - d - 4;
      const advLabel = svg('text', { class: 'adv-label', x: lx, y: ly, 'text-anchor': anchor, visibility: 'hidden' }, g);
      S.els.push({ g, tree, title, ring, flash, c, cross, pause, label, advMark, advLabel, adv: '', cls: '', tip: '' });
    }
  }

  // ---- messages ----

  function getMsg(id) {
    let m = S.msgs.get(id);
    if (!m) {
      m = { id, origin: -1, t0: performance.now(), pubAt: 0, recv: new Array(S.n).fill(null) };
      S.msgs.set(id, m);
      S.newest = id;
      S.msgsChanged = true;
      while (!S.replay && S.msgs.size > MAX_MSGS) {
        const old = S.msgs.keys().next().value;
        if (old === S.pinned) S.pinned = '';
        S.msgs.delete(old);
      }
    }
    return m;
  }

  function setRecv(m, i, hop, from, lat) {
    if (i < 0 || i >= S.n) return;
    const r = m.recv[i];
    if (r) { r.hop = hop; r.from = from; r.lat = lat; return; }
    const now = performance.now();
    m.recv[i] = { hop, from, lat, dups: 0, at: S.animate ? Math.max(now, m.t0 + hop * S.step) : now, dupAt: null };
  }

  const current = () => S.msgs.get(S.pinned) || currentNewest();
  function currentNewest() {
    if (!S.replay) return S.msgs.get(S.newest);
    let best = null; // replay: the latest message published by now
    for (const m of S.msgs.values()) if (m.pubAt <= S.vnow) best = m;
    return best || S.msgs.values().next().value;
  }

  // reached reports node i's receipt if it is shown at time now: the one
  // clock drives the graph, the table, the summary and the charts, so the
  // table fills in as the animation runs (live) or the replay plays.
  function reached(m, i, now) {
    const r = m && m.recv[i];
    return r && r.at <= now ? r : null;
  }
  function dupsAt(r, now) {
    if (!r.dupAt) return r.dups;
    let k = 0;
    for (const t of r.dupAt) if (t <= now) k++;
    return k;
  }

  function isDown(i, now) {
    if (S.replay) {
      let down = false;
      for (const [t, d] of S.downEv[i] || []) if (t <= now) down = d;
      return down;
    }
    const row = S.nodes[i];
    return !!row && (!row.alive || (row.stream && !row.stream.connected));
  }

  // isPaused reports whether node i's process is stopped (SIGSTOP): it
  // holds its connections but answers nothing, unlike a crashed node.
  function isPaused(i) {
    const f = !S.replay && S.faults && S.faults.nodes[i];
    return !!f && f.state === 'paused';
  }

  // bfs returns the shortest-path distance of every node from src (-1 if
  // none), cached for the last source: the table and the aggregated view
  // ask for it on every frame.
  function bfs(src) {
    if (S.bfsCache && S.bfsCache.src === src && S.bfsCache.n === S.n) return S.bfsCache.dist;
    const dist = new Array(S.n).fill(-1);
    if (src >= 0) {
      dist[src] = 0;
      const q = [src];
      for (let k = 0; k < q.length; k++) {
        const a = q[k];
        for (const b of S.adj[a]) if (dist[b] < 0) { dist[b] = dist[a] + 1; q.push(b); }
      }
    }
    S.bfsCache = { src, n: S.n, dist };
    return dist;
  }

  // ---- drawing ----

  function kick() { if (!S.raf) S.raf = requestAnimationFrame(frame); }

  function frame(t) {
    S.raf = 0;
    if (S.replay && S.playing) {
      S.vnow = Math.min(S.vend, S.vnow + (t - (S.last || t)) * S.rate);
      S.last = t;
      if (S.vnow >= S.vend) { S.playing = false; $('#play').textContent = 'Play'; }
      $('#scrub').value = S.vend ? Math.round((S.vnow / S.vend) * 1000) : 0;
      S.dirty = true;
    }
    const busy = render();
    if (busy || (S.replay && S.playing)) kick();
  }

  // render draws the graph at the display clock's now; it returns whether
  // anything is still moving.
  function render() {
    if (!S.els) return false;
    const now = clock(), m = current();
    let busy = false;
    if (S.agg && m) for (let i = 0; i < S.n; i++) if (m.recv[i] && m.recv[i].at > now) { busy = true; break; }
    // Cut links are drawn dashed, so that a partition shows as the links
    // it breaks.
    for (let k = 0; k < S.linkEls.length; k++) {
      const [a, b] = S.links[k], le = S.linkEls[k];
      const cls = 'link' + (S.cut.has(a + '-' + b) ? ' cut' : '');
      if (cls !== le.cls) { le.cls = cls; le.l.setAttribute('class', cls); }
    }
    for (let i = 0; i < S.els.length; i++) {
      const e = S.els[i], r = m && m.recv[i], paused = isPaused(i), down = !paused && isDown(i, now);
      const lit = r && r.at <= now;
      if (r && !lit) busy = true;
      const origin = lit && m.origin === i;
      // A paused node is grey with a pause mark whatever it holds: it
      // shows nothing new until it runs again.
      const cls = 'node' + (down ? ' down' : paused ? ' paused' : origin ? ' origin' : lit ? ' reached' : '');
      if (cls !== e.cls) {
        e.cls = cls;
        e.c.setAttribute('class', cls);
        e.cross.setAttribute('visibility', down ? 'visible' : 'hidden');
        e.pause.setAttribute('visibility', paused ? 'visible' : 'hidden');
        e.ring.setAttribute('visibility', origin && !down && !paused ? 'visible' : 'hidden');
        if (e.label) e.label.setAttribute('class', 'label' + (down ? ' down' : paused ? '' : lit ? ' on' : ''));
        if (e.label) e.label.setAttribute('visibility', paused ? 'hidden' : 'visible');
      }
      const adv = advMode(i);
      if (adv !== e.adv) {
        e.adv = adv;
        e.advMark.setAttribute('visibility', adv ? 'visible' : 'hidden');
        e.advLabel.setAttribute('visibility', adv ? 'visible' : 'hidden');
        e.advLabel.textContent = adv;
        if (adv) e.g.setAttribute('data-adversary', adv); else e.g.removeAttribute('data-adversary');
      }
      const tip = `node ${i} ${S.ids[i] || ''}: ` + (down ? 'failed' : paused ? 'paused (process stopped)' : lit ? `reached at hop ${r.hop}` + (r.from >= 0 ? ` from node ${r.from}` : ' (publisher)') : 'not reached') +
        (adv ? ` · adversary ${adv}: ${advDid(i)}` : '');
      if (tip !== e.tip) { e.tip = tip; e.title.textContent = tip; }
      // The link that carried this node's first copy grows from the sender
      // to the node as the copy travels.
      let f = 0;
      if (r && r.from >= 0 && r.from < S.n) {
        const p = m.recv[r.from], start = p ? Math.min(p.at, r.at) : r.at - S.step, end = r.at;
        f = end > start ? (now - start) / (end - start) : now >= end ? 1 : 0;
        f = Math.max(0, Math.min(1, f));
        if (f > 0 && f < 1) busy = true;
      }
      if (f > 0) {
        const [x1, y1] = S.pos[r.from], [x2, y2] = S.pos[i];
        e.tree.setAttribute('x1', x1); e.tree.setAttribute('y1', y1);
        e.tree.setAttribute('x2', x1 + (x2 - x1) * f); e.tree.setAttribute('y2', y1 + (y2 - y1) * f);
        e.tree.setAttribute('visibility', 'visible');
      } else e.tree.setAttribute('visibility', 'hidden');
      // A short ring marks a node that has just lit up.
      const age = lit && !reduced ? now - r.at : Infinity, span = S.replay ? S.vend / 40 : 600;
      if (age < span) {
        e.flash.setAttribute('r', S.r + 2 + (10 * age) / span);
        e.flash.setAttribute('visibility', 'visible');
        busy = true;
      } else e.flash.setAttribute('visibility', 'hidden');
    }
    // While the animation runs, the table and charts follow it frame by
    // frame; otherwise they are redrawn when something changed.
    if (S.dirty || S.replay || busy) {
      S.dirty = false;
      renderTable(m, now);
      renderCharts(m, now);
      if (S.agg) renderAgg(m, now);
    }
    if (S.msgsChanged) { S.msgsChanged = false; renderMsgSelect(); }
    if (S.replay) setStatus(`Replay · ${S.n} nodes · t = ${fmt(S.vnow)} of ${fmt(S.vend)} ms (virtual)`);
    return busy;
  }

  // renderAgg draws the mesh aggregated by hop, for meshes too large to
  // draw node by node: per hop, how many nodes lie at that shortest-path
  // distance from the publisher (pale bar) and how many took their first
  // copy at that hop by now (solid bar), with the same figures in a table.
  function renderAgg(m, now) {
    const dist = bfs(m ? m.origin : -1), atDist = [], byHop = [];
    let reachedN = 0;
    for (let i = 0; i < S.n; i++) {
      if (dist[i] >= 0) atDist[dist[i]] = (atDist[dist[i]] || 0) + 1;
      const r = reached(m, i, now);
      if (r) { byHop[r.hop] = (byHop[r.hop] || 0) + 1; reachedN++; }
    }
    const hops = Math.max(atDist.length, byHop.length, 1);
    const key = hops + '/' + Array.from(byHop, (c) => c || 0).join(',') + '/' + atDist.join(',');
    if (key === S.aggKey) return;
    S.aggKey = key;
    const el = $('#agg-chart'), top = 40, bottom = 40, left = 44, right = 12;
    el.replaceChildren();
    const maxC = Math.max(1, ...Array.from(atDist, (c) => c || 0), ...Array.from(byHop, (c) => c || 0));
    const bw = (W - left - right) / hops, ph = H - top - bottom;
    svg('line', { class: 'axis', x1: left, y1: H - bottom, x2: W - right, y2: H - bottom }, el);
    svg('line', { class: 'axis', x1: left, y1: top, x2: left, y2: H - bottom }, el);
    tick(el, left - 4, top + 4, maxC, 'end');
    tick(el, left - 4, H - bottom, 0, 'end');
    tick(el, (W + left) / 2, H - 8, 'hop (first copy) · shortest-path distance from the publisher');
    const t = svg('text', { class: 'tick', x: left, y: 18 }, el);
    t.textContent = `${S.n} nodes (${S.aggWhy}): nodes per hop, ${reachedN} reached so far`;
    for (let hp = 0; hp < hops; hp++) {
      const x = left + hp * bw, d = atDist[hp] || 0, c = byHop[hp] || 0;
      const hd = (d / maxC) * ph, hc = (c / maxC) * ph;
      svg('rect', { class: 'agg-dist', x: x + bw * 0.1, y: H - bottom - hd, width: bw * 0.8, height: hd }, el);
      svg('rect', { class: 'bar', x: x + bw * 0.25, y: H - bottom - hc, width: bw * 0.5, height: hc }, el);
      tick(el, x + bw / 2, H - bottom + 14, hp);
      if (c) tick(el, x + bw / 2, H - bottom - hc - 3, c);
    }
    const tb = $('#agg-table tbody');
    tb.replaceChildren();
    let cum = 0;
    for (let hp = 0; hp < hops; hp++) {
      const c = byHop[hp] || 0;
      cum += c;
      const tr = h('tr', {}, tb);
      for (const v of [hp, atDist[hp] || 0, c, cum, ((100 * cum) / Math.max(S.n, 1)).toFixed(1) + '%']) h('td', { textContent: v }, tr);
    }
    const agg = $('#agg');
    agg.dataset.reached = reachedN;
    agg.dataset.hops = hops;
  }

  function buildTable() {
    const tb = $('#nodes tbody');
    tb.replaceChildren();
    S.rows = [];
    for (let i = 0; i < S.n; i++) {
      const tr = h('tr', {}, tb);
      tr.dataset.index = i;
      const cells = [];
      for (let k = 0; k < 8; k++) cells.push(h('td', {}, tr));
      cells.push(h('td', { className: 'adv live-only' }, tr));
      cells[0].textContent = i;
      cells[1].textContent = short(S.ids[i]);
      cells[1].className = 'id';
      cells[1].title = S.ids[i] || '';
      const state = h('span', {}, cells[2]);
      const act = h('td', { className: 'live-only' }, tr);
      const kill = h('button', { type: 'button', className: 'danger', textContent: 'Kill' }, act);
      const restart = h('button', { type: 'button', className: 'secondary', textContent: 'Restart' }, act);
      // Pause and resume come after Restart, and only when the mesh takes
      // faults from the page.
      const pause = h('button', { type: 'button', className: 'secondary fault-only', textContent: 'Pause' }, act);
      const resume = h('button', { type: 'button', className: 'secondary fault-only', textContent: 'Resume' }, act);
      kill.setAttribute('aria-label', 'Kill node ' + i);
      restart.setAttribute('aria-label', 'Restart node ' + i);
      pause.setAttribute('aria-label', 'Pause node ' + i);
      resume.setAttribute('aria-label', 'Resume node ' + i);
      for (const [b, verb] of [[kill, 'kill'], [restart, 'restart'], [pause, 'pause'], [resume, 'resume']]) {
        b.dataset.action = verb;
        b.addEventListener('click', () => control(i, verb));
      }
      S.rows.push({ tr, cells, state, kill, restart, pause, resume, key: '' });
    }
  }

  function renderTable(m, now) {
    const dist = bfs(m ? m.origin : -1);
    for (let i = 0; i < S.n; i++) {
      const row = S.rows[i], r = reached(m, i, now), paused = isPaused(i), down = !paused && isDown(i, now);
      const live = !S.replay && S.nodes[i];
      const stateText = paused ? 'paused' : down ? (live && live.alive ? 'no events' : 'down') : 'up';
      const vals = [stateText, r ? r.hop : '–', dist[i] >= 0 ? dist[i] : '–', r ? (r.from >= 0 ? r.from : 'publisher') : '–',
        r ? fmt(r.lat) : '–', r ? dupsAt(r, now) : '–'];
      const adv = advMode(i), advText = adv ? adv + ': ' + advDid(i) : '–';
      const key = vals.join('|') + down + paused + (m && m.origin === i) + (live && live.alive) + advText;
      if (key === row.key) continue;
      row.key = key;
      row.state.textContent = stateText;
      row.state.className = paused ? 'state-paused' : down ? 'state-down' : 'state-up';
      for (let k = 1; k < vals.length; k++) row.cells[k + 2].textContent = vals[k];
      row.cells[8].textContent = advText;
      row.tr.className = (down ? 'down' : paused ? 'paused' : '') + (m && m.origin === i ? ' origin' : '') + (adv ? ' adversary' : '');
      row.tr.dataset.adversary = adv;
      row.tr.dataset.reached = !!r;
      row.tr.dataset.hop = r ? r.hop : '';
      row.tr.dataset.from = r ? r.from : '';
      row.kill.disabled = !live || !live.alive;
      row.restart.disabled = !live || live.alive;
      row.pause.disabled = !live || !live.alive || paused;
      row.resume.disabled = !live || !live.alive || !paused;
    }
    const sum = $('#summary');
    if (!m) { sum.textContent = 'No message yet.'; sum.dataset.reached = 0; sum.dataset.total = S.n; return; }
    let k = 0, last = 0, maxHop = 0, dups = 0;
    for (let i = 0; i < S.n; i++) {
      const r = reached(m, i, now);
      if (!r) continue;
      k++; last = Math.max(last, r.lat); maxHop = Math.max(maxHop, r.hop); dups += dupsAt(r, now);
    }
    sum.dataset.msg = m.id;
    sum.dataset.reached = k;
    sum.dataset.total = S.n;
    sum.textContent = `Message ${short(m.id)} from node ${m.origin >= 0 ? m.origin : '?'}: reached ${k}/${S.n} nodes` +
      (k > 1 ? ` · last after ${fmt(last)} ms · max hop ${maxHop} · ${dups} duplicates` : '');
  }

  function renderMsgSelect() {
    const sel = $('#msg'), keep = S.pinned;
    while (sel.options.length > 1) sel.remove(1);
    for (const m of [...S.msgs.values()].reverse()) {
      h('option', { value: m.id, textContent: short(m.id) + (m.origin >= 0 ? ' from node ' + m.origin : '') }, sel);
    }
    sel.value = S.msgs.has(keep) ? keep : '';
  }

  function renderCharts(m, now) {
    const hops = [], lats = [];
    for (let i = 0; i < S.n; i++) {
      const r = reached(m, i, now);
      if (!r) continue;
      hops[r.hop] = (hops[r.hop] || 0) + 1;
      if (r.hop > 0) lats.push(r.lat);
    }
    const key = Array.from(hops, (c) => c || 0).join(',') + '/' + lats.length + '/' + (lats.length ? Math.max(...lats) : 0);
    if (key === S.chartKey) return;
    S.chartKey = key;
    histogram($('#hist'), hops);
    cdf($('#lat'), lats.sort((a, b) => a - b));
  }

  const CW = 480, CH = 200, PL = 34, PB = 28, PT = 14, PR = 12;
  function axes(el, xlabel) {
    el.replaceChildren();
    svg('line', { class: 'axis', x1: PL, y1: CH - PB, x2: CW - PR, y2: CH - PB }, el);
    svg('line', { class: 'axis', x1: PL, y1: PT, x2: PL, y2: CH - PB }, el);
    const t = svg('text', { class: 'tick', x: (CW + PL) / 2, y: CH - 3, 'text-anchor': 'middle' }, el);
    t.textContent = xlabel;
  }
  function tick(el, x, y, text, anchor) {
    const t = svg('text', { class: 'tick', x, y, 'text-anchor': anchor || 'middle' }, el);
    t.textContent = text;
  }

  function histogram(el, sparse) {
    axes(el, 'hop');
    // Hops can have gaps (a hop-2 copy seen before any hop-1 one): fill
    // them, since map and spread skip holes.
    const hops = Array.from(sparse, (c) => c || 0);
    const n = hops.length, maxC = Math.max(1, ...hops);
    const cap = $('#hist-cap');
    if (!n) { cap.textContent = 'No receipts yet.'; return; }
    const bw = (CW - PL - PR) / n, ph = CH - PB - PT - 12;
    const parts = [];
    for (let hp = 0; hp < n; hp++) {
      const c = hops[hp], bh = (c / maxC) * ph, x = PL + hp * bw;
      svg('rect', { class: 'bar', x: x + bw * 0.15, y: CH - PB - bh, width: bw * 0.7, height: bh }, el);
      tick(el, x + bw / 2, CH - PB + 12, hp);
      if (c) tick(el, x + bw / 2, CH - PB - bh - 3, c);
      parts.push(`hop ${hp}: ${c}`);
    }
    tick(el, PL - 4, PT + 12, maxC, 'end');
    cap.textContent = 'Nodes per hop of their first copy. ' + parts.join(', ') + '.';
  }

  // The latency distribution as a cumulative curve: how many nodes had the
  // message after how long (the publisher excluded).
  function cdf(el, lats) {
    axes(el, S.replay ? 'virtual ms since publish' : 'ms since publish');
    const cap = $('#lat-cap');
    if (!lats.length) { cap.textContent = 'No deliveries yet.'; return; }
    const maxL = Math.max(lats[lats.length - 1], 1e-3), n = lats.length;
    const X = (v) => PL + (v / maxL) * (CW - PL - PR), Y = (k) => CH - PB - (k / n) * (CH - PB - PT);
    let d = `M${X(0)} ${Y(0)}`;
    lats.forEach((v, k) => { d += `H${X(v)}V${Y(k + 1)}`; });
    svg('path', { class: 'cdf', d }, el);
    lats.forEach((v, k) => svg('circle', { class: 'dot', cx: X(v), cy: Y(k + 1), r: 2.5 }, el));
    tick(el, PL - 4, PT + 4, n, 'end');
    tick(el, PL - 4, CH - PB, 0, 'end');
    tick(el, CW - PR, CH - PB + 12, fmt(maxL), 'end');
    tick(el, PL, CH - PB + 12, 0, 'start');
    const p50 = lats[Math.floor((n - 1) / 2)];
    cap.textContent = `Nodes reached over time: ${n} deliveries, median ${fmt(p50)} ms, last ${fmt(maxL)} ms.`;
  }

  // ---- live mode ----

  // liveStatus says in the header how many nodes are up, from S.nodes.
  function liveStatus() {
    if (S.replay || !S.connected || !S.nodes) return;
    const up = S.nodes.filter((r, i) => r.alive && r.stream.connected && !isPaused(i)).length;
    const paused = S.nodes.filter((r, i) => isPaused(i)).length;
    setStatus(`Live · ${S.n} nodes · ${up} up and streaming` + (paused ? ` · ${paused} paused` : ''));
  }

  async function refreshNodes() {
    try {
      const [res, faults, adv] = await Promise.all([getJSON('/api/nodes'), getJSON('/api/faults'),
        getJSON('/api/adversaries').catch(() => null)]);
      S.nodes = res.nodes;
      setFaults(faults);
      if (adv) setAdversaries(adv);
      S.dirty = true;
      kick();
      liveStatus();
    } catch (err) {
      setStatus('Cannot read the node table: ' + err.message, true);
    }
  }

  // ---- adversaries ----

  // advMode is node i's adversary mode, '' for honest (or unknown).
  function advMode(i) {
    const a = !S.replay && S.adv[i];
    return (a && a.mode) || '';
  }
  // advDid says what node i did as an adversary, from its counts.
  function advDid(i) {
    const st = (S.adv[i] && S.adv[i].stats) || {};
    const parts = Object.keys(st).filter((k) => st[k] > 0).map((k) => `${k} ${st[k]}`);
    return parts.length ? parts.join(' · ') : 'nothing yet';
  }

  // setAdversaries takes an answer of GET /api/adversaries (or of the
  // adversary route): each node's mode and counts.
  function setAdversaries(v) {
    S.adv = v.nodes.map((n) => ({ mode: n.mode, stats: n.stats }));
    const marked = v.nodes.filter((n) => n.mode);
    document.body.classList.toggle('adversaries', marked.length > 0);
    const st = $('#adv-state');
    st.textContent = marked.length ? marked.map((n) => `node ${n.index}: ${n.mode}`).join(' · ') : 'No adversaries.';
    st.dataset.count = marked.length;
    for (const row of S.rows || []) row.key = '';
    S.dirty = true;
    kick();
  }

  // adversary sets node i's mode ('' for honest) through the node's own
  // PUT /adversary, and shows what is then in force.
  async function adversary(mode) {
    const errEl = $('#adv-error');
    errEl.textContent = '';
    const i = Number($('#adv-node').value);
    const buttons = [$('#adv-set'), $('#adv-honest')];
    for (const b of buttons) b.disabled = true;
    try {
      setAdversaries(await getJSON(`/api/nodes/${i}/adversary`, { method: 'POST', body: JSON.stringify({ mode }) }));
    } catch (err) {
      errEl.textContent = err.message;
    } finally {
      for (const b of buttons) b.disabled = false;
    }
  }

  // ---- faults ----

  // setFaults takes an answer of GET /api/faults (or of a fault route):
  // which links are cut, which nodes paused, the loss in force.
  function setFaults(f) {
    const on = !!(f && f.available);
    S.faults = on ? f : null;
    document.body.classList.toggle('faults', on);
    S.cut = new Set(on ? f.cut_links.map(([a, b]) => a + '-' + b) : []);
    for (const row of S.rows || []) row.key = '';
    const st = $('#fault-state');
    if (!on) { st.textContent = f && f.why ? 'No fault controls: ' + f.why : 'No faults.'; return; }
    const paused = f.nodes.filter((n) => n.state === 'paused').map((n) => n.index);
    const cutNodes = f.nodes.filter((n) => n.cut.length).length;
    const parts = [];
    if (f.cut_links.length || cutNodes) parts.push(`${f.cut_links.length} links cut (${cutNodes} nodes cut off from some others)`);
    if (f.loss > 0) parts.push(`loss up to ${Math.round(f.loss * 100)}%`);
    if (paused.length) parts.push('paused: node' + (paused.length > 1 ? 's ' : ' ') + paused.join(', '));
    st.textContent = parts.length ? parts.join(' · ') : 'No faults.';
    st.dataset.cut = f.cut_links.length;
    st.dataset.paused = paused.join(',');
    st.dataset.loss = f.loss;
    const loss = $('#loss');
    if (document.activeElement !== loss && !S.lossBusy) {
      loss.value = Math.round(f.loss * 100);
      $('#loss-out').textContent = loss.value + '%';
    }
  }

  // fault sends one fault route and shows what is then in force.
  async function fault(path, body) {
    const errEl = $('#fault-error');
    errEl.textContent = '';
    const buttons = [$('#split'), $('#heal')];
    for (const b of buttons) b.disabled = true;
    try {
      setFaults(await getJSON(path, { method: 'POST', body: JSON.stringify(body || {}) }));
      S.dirty = true;
      kick();
    } catch (err) {
      errEl.textContent = err.message;
      refreshNodes();
    } finally {
      for (const b of buttons) b.disabled = false;
    }
  }

  async function setLoss() {
    const v = Number($('#loss').value);
    S.lossBusy = true;
    try { await fault('/api/faults/loss', { drop: v / 100 }); } finally { S.lossBusy = false; }
  }
  let refreshTimer = 0;
  function refreshSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refreshNodes, 150);
  }

  function onStream(ev) {
    let e;
    try { e = JSON.parse(ev.data); } catch { return; }
    if (S.replay) return;
    switch (e.type) {
      case 'event': {
        const m = getMsg(e.id);
        if (e.origin_index >= 0) m.origin = e.origin_index;
        if (e.kind === 'published') setRecv(m, e.index, 0, -1, 0);
        else if (e.kind === 'delivered') setRecv(m, e.index, e.hop, e.from_index, e.latency_ms);
        else if (e.kind === 'duplicate' && m.recv[e.index]) m.recv[e.index].dups++;
        break;
      }
      case 'hello':
        S.connected = true;
        refreshSoon();
        break;
      case 'stream': case 'control':
        refreshSoon();
        break;
      case 'lost': {
        setStatus(`This page fell behind and missed ${e.count} events; filling in from the nodes.`, true);
        const m = current();
        if (m) reconcile(m.id);
        break;
      }
    }
    S.dirty = true;
    kick();
  }

  // reconcile fills in what the stream missed from the nodes' own
  // receipts, and brings duplicate counts up to date.
  async function reconcile(id) {
    try {
      const res = await getJSON('/api/messages/' + id);
      const m = getMsg(id);
      for (const r of res.receipts) {
        if (!r.reached) continue;
        if (r.hop === 0) m.origin = r.index;
        setRecv(m, r.index, r.hop, r.from_index, r.latency_ms);
        m.recv[r.index].dups = Math.max(m.recv[r.index].dups, r.duplicates);
      }
      S.dirty = true;
      kick();
    } catch (err) {
      setStatus('Cannot read receipts: ' + err.message, true);
    }
  }

  async function publish(ev) {
    ev.preventDefault();
    const btn = $('#publish'), errEl = $('#pub-error');
    btn.disabled = true;
    errEl.textContent = '';
    try {
      const res = await getJSON('/api/publish', {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ node: Number($('#pub-node').value), body: $('#pub-body').value }),
      });
      const m = getMsg(res.id);
      m.origin = res.node;
      if (S.pinned) { S.pinned = ''; S.msgsChanged = true; }
      S.newest = res.id;
      S.dirty = true;
      kick();
      setTimeout(() => reconcile(res.id), 1500);
    } catch (err) {
      errEl.textContent = 'Publish failed: ' + err.message;
    } finally {
      btn.disabled = false;
    }
  }

  async function control(i, verb) {
    const row = S.rows[i];
    row.kill.disabled = row.restart.disabled = row.pause.disabled = row.resume.disabled = true;
    // data-pending marks the row while its request runs (a restart waits
    // for the node, or the mesh, to be back).
    row.tr.dataset.pending = verb;
    try {
      const res = await getJSON(`/api/nodes/${i}/${verb}`, { method: 'POST' });
      if (verb === 'pause' || verb === 'resume') {
        // These answer with the faults in force; the node table is as
        // before.
        setFaults(res);
        await refreshNodes();
        return;
      }
      S.nodes = res.nodes;
      row.key = '';
      S.dirty = true;
      kick();
      liveStatus();
    } catch (err) {
      setStatus(`${verb} node ${i} failed: ${err.message}`, true);
      refreshNodes();
    } finally {
      delete row.tr.dataset.pending;
    }
  }

  async function startLive() {
    const topo = await getJSON('/api/topology');
    setTopology(topo.nodes.length, topo.nodes.map((n) => n.id), topo.links);
    await refreshNodes();
    const es = new EventSource('/api/events');
    es.onmessage = onStream;
    es.onerror = () => { S.connected = false; setStatus('Lost the live stream; reconnecting…', true); };
    setInterval(refreshNodes, 5000);
  }

  // ---- replay mode ----

  function startReplay(t) {
    S.replay = true;
    document.body.classList.add('replay');
    S.msgs = new Map();
    S.pinned = S.newest = '';
    setTopology(t.nodes, t.ids || [], t.links);
    S.downEv = Array.from({ length: t.nodes }, () => []);
    for (const ev of t.events) {
      if (ev.kind === 'down' || ev.kind === 'up') { S.downEv[ev.node].push([ev.at_ms, ev.kind === 'down']); continue; }
      const m = getMsg(ev.msg);
      const r = { hop: ev.hop, from: ev.from, lat: ev.at_ms - m.pubAt, dups: 0, at: ev.at_ms, dupAt: [] };
      if (ev.kind === 'published') { m.origin = ev.node; m.pubAt = ev.at_ms; r.lat = 0; m.recv[ev.node] = r; }
      else if (ev.kind === 'delivered' && !m.recv[ev.node]) m.recv[ev.node] = r;
      else if (ev.kind === 'duplicate' && m.recv[ev.node]) m.recv[ev.node].dupAt.push(ev.at_ms);
    }
    S.vend = t.events.length ? t.events[t.events.length - 1].at_ms : 0;
    $('#replay-source').textContent = (t.source ? t.source + ' · ' : '') + `${t.nodes} nodes, ${t.events.length} events`;
    setRate();
    S.vnow = 0;
    S.msgsChanged = S.dirty = true;
    play(true);
  }

  function setRate() {
    const v = $('#speed').value;
    S.rate = v === 'auto' ? Math.max(S.vend, 1e-3) / 8000 : Number(v);
  }
  function play(on) {
    if (on && S.vnow >= S.vend) S.vnow = 0;
    S.playing = on;
    S.last = 0;
    $('#play').textContent = on ? 'Pause' : 'Play';
    kick();
  }

  function loadFile(file) {
    const rd = new FileReader();
    rd.onload = () => {
      try {
        const t = JSON.parse(rd.result);
        if (t.version !== 1 || !(t.nodes > 0) || !Array.isArray(t.events) || !Array.isArray(t.links)) throw new Error('not a version 1 gossipmesh trace');
        startReplay(t);
      } catch (err) {
        setStatus('Cannot replay ' + file.name + ': ' + err.message, true);
      }
    };
    rd.readAsText(file);
  }

  // ---- start ----

  function wire() {
    $('#publish-form').addEventListener('submit', publish);
    $('#faults').addEventListener('submit', (e) => e.preventDefault());
    $('#adversary-form').addEventListener('submit', (e) => { e.preventDefault(); adversary($('#adv-mode').value.trim()); });
    $('#adv-honest').addEventListener('click', () => adversary(''));
    $('#split').addEventListener('click', () => fault('/api/faults/split', {}));
    $('#heal').addEventListener('click', () => fault('/api/faults/heal', {}));
    $('#loss').addEventListener('input', (e) => { $('#loss-out').textContent = e.target.value + '%'; });
    $('#loss').addEventListener('change', setLoss);
    $('#animate').checked = S.animate;
    $('#animate').addEventListener('change', (e) => { S.animate = e.target.checked; });
    $('#msg').addEventListener('change', (e) => { S.pinned = e.target.value; S.dirty = true; kick(); });
    $('#trace-file').addEventListener('change', (e) => { if (e.target.files[0]) loadFile(e.target.files[0]); });
    $('#play').addEventListener('click', () => play(!S.playing));
    $('#rewind').addEventListener('click', () => { S.vnow = 0; S.dirty = true; play(true); });
    $('#speed').addEventListener('change', () => { setRate(); kick(); });
    $('#scrub').addEventListener('input', (e) => {
      S.vnow = (Number(e.target.value) / 1000) * S.vend;
      if (S.playing) play(false);
      S.dirty = true;
      kick();
    });
  }

  async function main() {
    wire();
    try {
      const mode = await getJSON('/api/mode');
      if (location.pathname === '/replay' || !mode.live) {
        document.body.classList.add('replay');
        if (mode.trace) startReplay(await getJSON('/api/trace'));
        else setStatus('Replay: choose a trace file (written by mesh sim --trace FILE).');
        return;
      }
      await startLive();
    } catch (err) {
      setStatus('Cannot start: ' + err.message, true);
    }
  }
  main();
})();
