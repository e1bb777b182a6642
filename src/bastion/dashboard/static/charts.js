// Small SVG charts drawn by hand: bars (with an optional cap line), grouped bars, lines and
// horizontal bars. Every mark carries its exact value in data-* attributes and a <title>.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  }
  if (text !== undefined) node.textContent = text;
  return node;
}

function withTitle(node, text) {
  node.appendChild(svgEl("title", {}, text));
  return node;
}

function dataAttrs(data) {
  const out = {};
  for (const [name, value] of Object.entries(data || {})) out["data-" + name] = value;
  return out;
}

function niceMax(value) {
  if (!(value > 0)) return 1;
  const step = Math.pow(10, Math.floor(Math.log10(value)));
  for (const m of [1, 2, 4, 6, 8, 10]) if (m * step >= value) return m * step;
  return 10 * step;
}

function frame(width, height, max, format, pad) {
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img" });
  const plotH = height - pad.top - pad.bottom;
  for (let t = 0; t <= 4; t++) {
    const y = pad.top + plotH * (1 - t / 4);
    svg.appendChild(svgEl("line", { x1: pad.left, x2: width - pad.right, y1: y, y2: y, class: "grid" }));
    svg.appendChild(svgEl("text", { x: pad.left - 6, y: y + 4, "text-anchor": "end" }, format((max * t) / 4)));
  }
  return svg;
}

function xLabels(svg, labels, x0, step, y) {
  const every = Math.max(1, Math.ceil(labels.length / 10));
  labels.forEach((label, i) => {
    if (i % every === 0) {
      svg.appendChild(svgEl("text", { x: x0 + step * (i + 0.5), y, "text-anchor": "middle" }, label));
    }
  });
}

// items: [{label, value, title, data, over}]; opts: {format, cap: {value, label, data}}
function barChart(items, opts) {
  const W = opts.width || 1300, H = 220, pad = { left: 70, right: 12, top: 14, bottom: 28 };
  const capValue = opts.cap && opts.cap.value !== null ? opts.cap.value : 0;
  const max = niceMax(Math.max(capValue, ...items.map((i) => i.value)) * 1.05);
  const svg = frame(W, H, max, opts.format, pad);
  const plotH = H - pad.top - pad.bottom;
  const step = (W - pad.left - pad.right) / Math.max(1, items.length);
  items.forEach((item, i) => {
    const h = (plotH * item.value) / max;
    const rect = svgEl("rect", {
      x: pad.left + step * i + step * 0.12, width: step * 0.76, y: H - pad.bottom - h, height: h,
      class: "bar" + (item.over ? " over" : ""), ...dataAttrs(item.data),
    });
    svg.appendChild(withTitle(rect, item.title));
  });
  xLabels(svg, items.map((i) => i.label), pad.left, step, H - 8);
  if (capValue > 0) {
    const y = H - pad.bottom - (plotH * capValue) / max;
    const line = svgEl("line", { x1: pad.left, x2: W - pad.right, y1: y, y2: y, class: "cap", ...dataAttrs(opts.cap.data) });
    svg.appendChild(withTitle(line, opts.cap.label));
    svg.appendChild(svgEl("text", { x: W - pad.right, y: y - 4, "text-anchor": "end", class: "cap-label" }, opts.cap.label));
  }
  return svg;
}

// groups: [{label, bars: [{cls, value, title, data}]}]
function groupedBarChart(groups, opts) {
  const W = opts.width || 420, H = 220, pad = { left: 56, right: 8, top: 14, bottom: 28 };
  const values = groups.flatMap((g) => g.bars.map((b) => b.value || 0));
  const max = niceMax(Math.max(0, ...values) * 1.05);
  const svg = frame(W, H, max, opts.format, pad);
  const plotH = H - pad.top - pad.bottom;
  const step = (W - pad.left - pad.right) / Math.max(1, groups.length);
  groups.forEach((group, i) => {
    const width = (step * 0.8) / Math.max(1, group.bars.length);
    group.bars.forEach((bar, j) => {
      const h = (plotH * (bar.value || 0)) / max;
      const rect = svgEl("rect", {
        x: pad.left + step * i + step * 0.1 + width * j, width: width * 0.9, y: H - pad.bottom - h,
        height: h, class: bar.cls, ...dataAttrs(bar.data),
      });
      svg.appendChild(withTitle(rect, bar.title));
    });
  });
  xLabels(svg, groups.map((g) => g.label), pad.left, step, H - 8);
  return svg;
}

// labels: x labels; series: [{name, cls, values: [number|null], data: (i) => {...}}]
function lineChart(labels, series, opts) {
  const W = opts.width || 1300, H = 200, pad = { left: 56, right: 12, top: 14, bottom: 28 };
  const values = series.flatMap((s) => s.values.filter((v) => v !== null));
  const max = niceMax((opts.max !== undefined ? Math.max(opts.max, ...values) : Math.max(0, ...values)) * 1.05);
  const svg = frame(W, H, max, opts.format, pad);
  const plotH = H - pad.top - pad.bottom;
  const step = (W - pad.left - pad.right) / Math.max(1, labels.length);
  const at = (i, v) => [pad.left + step * (i + 0.5), H - pad.bottom - (plotH * v) / max];
  for (const s of series) {
    let run = [];
    const flush = () => {
      if (run.length > 1) svg.appendChild(svgEl("polyline", { points: run.join(" "), class: s.cls }));
      run = [];
    };
    s.values.forEach((v, i) => {
      if (v === null) return flush();
      const [x, y] = at(i, v);
      run.push(`${x},${y}`);
      const dot = svgEl("circle", { cx: x, cy: y, r: 3, class: s.cls, ...dataAttrs(s.data(i)) });
      svg.appendChild(withTitle(dot, `${s.name} ${labels[i]}: ${opts.format(v)}`));
    });
    flush();
  }
  xLabels(svg, labels, pad.left, step, H - 8);
  return svg;
}

// items: [{label, value, title, data}]
function hbarChart(items, opts) {
  const rowH = 22, W = 330, left = 110, right = 70;
  const H = Math.max(1, items.length) * rowH + 8;
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img" });
  const max = Math.max(1, ...items.map((i) => i.value));
  items.forEach((item, i) => {
    const y = 4 + i * rowH;
    const w = ((W - left - right) * item.value) / max;
    svg.appendChild(svgEl("text", { x: left - 6, y: y + 14, "text-anchor": "end" }, item.label));
    const rect = svgEl("rect", { x: left, y: y + 3, width: Math.max(1, w), height: rowH - 8, class: "bar", ...dataAttrs(item.data) });
    svg.appendChild(withTitle(rect, item.title));
    svg.appendChild(svgEl("text", { x: left + w + 6, y: y + 14, class: "value" }, opts.format(item.value)));
  });
  if (!items.length) svg.appendChild(svgEl("text", { x: 8, y: 18 }, "no spend"));
  return svg;
}

function legend(entries) {
  const box = document.createElement("div");
  box.className = "legend";
  for (const [name, color] of entries) {
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = color;
    item.append(swatch, name);
    box.appendChild(item);
  }
  return box;
}
