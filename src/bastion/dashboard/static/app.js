// The dashboard page: fetch each /dashboard/api/*.json (the session cookie goes along on its
// own) and draw it. A section gets data-loaded="true" once drawn, data-failed when it could not.
"use strict";

const QUANTS = [["p50", "var(--p50)"], ["p95", "var(--p95)"], ["p99", "var(--p99)"]];

const usd = (micros) => "$" + (micros / 1e6).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 4 });
const trim = (text) => (text.includes(".") ? text.replace(/\.?0+$/, "") : text); // 100 stays 100
const ms = (v) => (v >= 1000 ? trim((v / 1000).toFixed(2)) + " s" : trim(v.toFixed(v >= 100 ? 0 : 1)) + " ms");
const pct = (v) => (v * 100).toFixed(v < 0.1 ? 1 : 0) + "%";
const hourLabel = (iso) => iso.slice(11, 16);
const dayLabel = (iso) => iso.slice(5);

function part(section, name) {
  return document.querySelector(`#${section} [data-part="${name}"]`);
}

function figure(caption, chart) {
  const fig = document.createElement("figure");
  const cap = document.createElement("figcaption");
  cap.textContent = caption;
  fig.append(cap, chart);
  return fig;
}

function tile(label, text, data) {
  const box = document.createElement("div");
  box.className = "tile";
  for (const [name, value] of Object.entries(data)) box.dataset[name] = value;
  const b = document.createElement("b");
  b.textContent = text;
  const span = document.createElement("span");
  span.textContent = label;
  box.append(b, span);
  return box;
}

async function getJSON(path) {
  const response = await fetch(path, { credentials: "same-origin", cache: "no-store" });
  if (response.status === 401) {
    window.location.assign("/dashboard");
    throw new Error("session expired");
  }
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function drawLatency(data) {
  const windows = part("latency", "windows");
  windows.replaceChildren();
  for (const [name, caption] of [["hour", "last hour"], ["day", "last 24 hours"], ["30d", "last 30 days"]]) {
    const groups = data[name].map((m) => ({
      label: m.model,
      bars: QUANTS.map(([q]) => ({
        cls: "q-" + q, value: m[q], title: `${m.model} ${q} (${caption}): ${ms(m[q])}, ${m.requests} requests`,
        data: { window: name, model: m.model, q, value: m[q] },
      })),
    }));
    windows.appendChild(figure(caption, groupedBarChart(groups, { format: ms })));
  }
  windows.appendChild(legend(QUANTS));
  const models = [...new Set(data.series.map((p) => p.model))];
  const colors = ["var(--p50)", "var(--p95)", "var(--p99)", "#7b61ff", "#2e9d5b", "#333"];
  const series = models.map((model, k) => {
    const byHour = new Map(data.series.filter((p) => p.model === model).map((p) => [p.hour, p.p95]));
    return {
      name: model, cls: "m" + k, values: data.hours.map((h) => (byHour.has(h) ? byHour.get(h) : null)),
      data: (i) => ({ model, hour: data.hours[i], q: "p95", value: byHour.get(data.hours[i]) }),
    };
  });
  const chart = lineChart(data.hours.map(hourLabel), series, { format: ms });
  series.forEach((s, k) => chart.querySelectorAll("." + s.cls).forEach((n) => { n.style.stroke = colors[k % colors.length]; n.style.fill = n.tagName === "circle" ? colors[k % colors.length] : "none"; }));
  part("latency", "series").replaceChildren(chart, legend(models.map((m, k) => [m, colors[k % colors.length]])));
}

function drawSpend(data) {
  const box = part("spend", "charts");
  box.replaceChildren();
  for (const env of data.environments) {
    const cap = env.daily_cap_micros;
    const items = env.days.map((d) => ({
      label: dayLabel(d.day), value: d.cost_micros, over: cap !== null && d.cost_micros > cap,
      title: `${env.name} ${d.day}: ${usd(d.cost_micros)}, ${d.requests} requests` + (d.unknown_cost ? `, ${d.unknown_cost} of unknown cost` : ""),
      data: { env: env.name, day: d.day, value: d.cost_micros },
    }));
    const capLine = cap === null ? null : { value: cap, label: `daily budget ${usd(cap)}`, data: { env: env.name, cap } };
    const unknown = env.month_to_date_unknown_cost ? ` + ${env.month_to_date_unknown_cost} requests of unknown cost` : "";
    const of = env.monthly_cap_micros === null ? "" : ` of ${usd(env.monthly_cap_micros)}`;
    const month = `month to date ${usd(env.month_to_date_micros)}${unknown}${of}`;
    const fig = figure(`${env.name}: ${month}`, barChart(items, { format: usd, cap: capLine }));
    fig.dataset.env = env.name;
    fig.dataset.monthToDate = env.month_to_date_micros;
    box.appendChild(fig);
  }
}

function drawTop(data) {
  const box = part("top", "charts");
  box.replaceChildren();
  for (const [window, caption] of [["day", "today (UTC)"], ["30d", "last 30 days"]]) {
    for (const [group, noun] of [["keys", "keys"], ["users", "end users"]]) {
      const items = data[window][group].map((row) => ({
        label: row.name, value: row.cost_micros,
        title: `${row.name}${row.owner ? " (" + row.owner + ")" : ""}: ${usd(row.cost_micros)}, ${row.requests} requests` + (row.unknown_cost ? `, ${row.unknown_cost} of unknown cost` : ""),
        data: { window, group, name: row.name, value: row.cost_micros },
      }));
      box.appendChild(figure(`top ${noun}, ${caption}`, hbarChart(items, { format: usd })));
    }
  }
}

function drawRates(data) {
  const tiles = part("rates", "tiles");
  tiles.replaceChildren();
  for (const [name, caption] of [["hour", "last hour"], ["day", "24 h"], ["30d", "30 days"]]) {
    const w = data[name];
    tiles.appendChild(tile(`errors, ${caption} (${w.errors}/${w.requests})`, w.error_rate === null ? "–" : pct(w.error_rate), { window: name, stat: "error_rate", value: w.error_rate }));
    tiles.appendChild(tile(`fallbacks, ${caption}`, w.fallback_rate === null ? "–" : pct(w.fallback_rate), { window: name, stat: "fallback_rate", value: w.fallback_rate }));
  }
  const labels = data.series.map((p) => hourLabel(p.hour));
  const series = [["error_rate", "errors", "q-p99"], ["fallback_rate", "fallbacks", "q-p95"]].map(([key, name, cls]) => ({
    name, cls, values: data.series.map((p) => p[key]),
    data: (i) => ({ series: key, hour: data.series[i].hour, value: data.series[i][key] }),
  }));
  part("rates", "series").replaceChildren(lineChart(labels, series, { format: pct, max: 0.01, width: 620 }), legend([["errors", "var(--p99)"], ["fallbacks", "var(--p95)"]]));
}

function drawCache(data) {
  const tiles = part("cache", "tiles");
  tiles.replaceChildren();
  for (const [name, caption] of [["day", "today"], ["30d", "30 days"]]) {
    const w = data[name];
    tiles.appendChild(tile(`hit ratio, ${caption}`, w.hit_ratio === null ? "–" : pct(w.hit_ratio), { window: name, stat: "hit_ratio", value: w.hit_ratio }));
    tiles.appendChild(tile(`saved, ${caption}`, usd(w.savings_micros), { window: name, stat: "savings_micros", value: w.savings_micros }));
  }
  const items = data.series.map((d) => ({
    label: dayLabel(d.day), value: d.savings_micros,
    title: `${d.day}: saved ${usd(d.savings_micros)}, hit ratio ${d.hit_ratio === null ? "–" : pct(d.hit_ratio)}`,
    data: { day: d.day, value: d.savings_micros, ratio: d.hit_ratio },
  }));
  part("cache", "series").replaceChildren(figure("saved per day", barChart(items, { format: usd, width: 620 })));
}

function drawBreakers(data) {
  const box = part("breakers", "badges");
  box.replaceChildren();
  for (const b of data.breakers) {
    const badge = document.createElement("span");
    badge.className = "badge state-" + b.state;
    badge.dataset.environment = b.environment;
    badge.dataset.model = b.model;
    badge.dataset.state = b.state;
    badge.textContent = `${b.environment} / ${b.model}: ${b.state.replace("_", "-")}`;
    badge.title = `${b.failures_in_window} failures of ${b.requests_in_window} in the window`;
    box.appendChild(badge);
  }
  if (!data.breakers.length) box.textContent = "No upstream called yet: no breakers.";
}

function drawModels(data) {
  const box = part("models", "badges");
  box.replaceChildren();
  for (const r of data.retirements) {
    const badge = document.createElement("span");
    const retired = r.days_left !== null && r.days_left < 0;
    badge.className = "badge " + (retired ? "retired" : "retiring");
    badge.dataset.model = r.model;
    badge.dataset.daysLeft = r.days_left === null ? "" : String(r.days_left);
    badge.textContent = retired ? `${r.model}: retired ${r.retires_at}`
      : r.days_left === null ? `${r.model}: deprecated` : `${r.model}: retires in ${r.days_left} d`;
    badge.title = r.message;
    box.appendChild(badge);
  }
  if (!data.retirements.length) box.textContent = "No model in use retires within 30 days.";
}

function cost(r) {
  if (r.cost_micros === null) return r.attempts ? "unknown" : "–";
  // A billed answer whose usage never arrived whole counts at its worst case.
  return r.cost_status === "estimated" ? `≤ ${usd(r.cost_micros)} (estimated)` : usd(r.cost_micros);
}

function drawRequests(data) {
  const body = document.querySelector("#requests tbody");
  body.replaceChildren();
  for (const r of data.requests) {
    const row = document.createElement("tr");
    row.dataset.requestId = r.request_id;
    if (r.status >= 400 || (r.outcome !== "ok" && r.outcome !== "replayed")) row.className = "error";
    const cells = [
      new Date(r.started_at * 1000).toISOString().slice(0, 19).replace("T", " "), r.request_id,
      r.environment || "", r.route || "", r.model_served || r.model_requested || "", r.status, r.outcome,
      ms(r.latency_ms), cost(r), r.has_sample ? "view" : "",
    ];
    for (const text of cells) {
      const td = document.createElement("td");
      td.textContent = String(text);
      row.appendChild(td);
    }
    row.addEventListener("click", () => showSample(r.request_id));
    body.appendChild(row);
  }
}

async function showSample(id) {
  const box = document.getElementById("sample");
  box.hidden = false;
  part("requests", "id").textContent = id;
  const pre = part("requests", "body");
  const response = await fetch("/dashboard/api/sample.json?id=" + encodeURIComponent(id), { credentials: "same-origin" });
  pre.textContent = response.ok ? JSON.stringify(await response.json(), null, 2) : "No sample was kept for this request.";
  box.dataset.requestId = id;
  box.dataset.found = String(response.ok);
}

const SECTIONS = [
  ["latency", "/dashboard/api/latency.json", drawLatency],
  ["spend", "/dashboard/api/spend.json", drawSpend],
  ["top", "/dashboard/api/top.json", drawTop],
  ["rates", "/dashboard/api/rates.json", drawRates],
  ["cache", "/dashboard/api/cache.json", drawCache],
  ["breakers", "/dashboard/api/breakers.json", drawBreakers],
  ["models", "/dashboard/api/models.json", drawModels],
  ["requests", () => requestsPath(), drawRequests],
];

function requestsPath() {
  const q = document.getElementById("q").value.trim();
  return "/dashboard/api/requests.json" + (q ? "?q=" + encodeURIComponent(q) : "");
}

async function load(id, path, draw) {
  const section = document.getElementById(id);
  try {
    draw(await getJSON(typeof path === "function" ? path() : path));
    section.dataset.loaded = "true";
    delete section.dataset.failed;
  } catch (err) {
    section.dataset.failed = String(err);
  }
}

async function refresh() {
  await Promise.all(SECTIONS.map(([id, path, draw]) => load(id, path, draw)));
  document.getElementById("updated").textContent = "updated " + new Date().toISOString().slice(11, 19) + " UTC";
}

document.getElementById("search").addEventListener("submit", (event) => {
  event.preventDefault();
  load("requests", requestsPath(), drawRequests);
});

refresh();
setInterval(refresh, 30000);
