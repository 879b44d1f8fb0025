// Tiny SVG charts drawn by hand: no library, nothing fetched.

const NS = "http://www.w3.org/2000/svg";

function el(name, attrs, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

const H = 220;

/** Match the viewBox to the element's width, so text and dots are never stretched. */
function size(svg) {
  const W = Math.max(280, Math.round(svg.clientWidth || 600));
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  return W;
}
const PAD = { left: 44, right: 12, top: 22, bottom: 28 };

function niceMax(value) {
  if (value <= 0) return 1;
  const exp = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (value <= step * exp) return step * exp;
  return 10 * exp;
}

function axes(svg, maxY, unit, W) {
  const h = H - PAD.top - PAD.bottom;
  for (let i = 0; i <= 4; i += 1) {
    const y = PAD.top + h - (h * i) / 4;
    svg.append(el("line", { x1: PAD.left, x2: W - PAD.right, y1: y, y2: y, class: "grid" }));
    const label = (maxY * i) / 4;
    svg.append(el("text", { x: PAD.left - 6, y: y + 4, class: "tick", "text-anchor": "end" },
      label >= 10 ? String(Math.round(label)) : label.toFixed(1)));
  }
  svg.append(el("text", { x: 4, y: 12, class: "tick" }, unit));
}

/** Points {t, ms, kind} (kind: cold | warm | warmup) as a scatter over time with a warm line. */
export function latencyChart(svg, points) {
  svg.replaceChildren();
  const W = size(svg);
  if (!points.length) {
    svg.append(el("text", { x: W / 2, y: H / 2, class: "empty", "text-anchor": "middle" },
      "no invocations yet"));
    return;
  }
  const t0 = points[0].t;
  const t1 = Math.max(points[points.length - 1].t, t0 + 1);
  const maxY = niceMax(Math.max(...points.map((p) => p.ms)));
  axes(svg, maxY, "ms", W);
  const w = W - PAD.left - PAD.right;
  const h = H - PAD.top - PAD.bottom;
  const x = (t) => PAD.left + ((t - t0) / (t1 - t0)) * w;
  const y = (ms) => PAD.top + h - (ms / maxY) * h;
  const warm = points.filter((p) => p.kind === "warm");
  if (warm.length > 1) {
    const d = warm.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.ms).toFixed(1)}`);
    svg.append(el("path", { d: d.join(" "), class: "line warm" }));
  }
  for (const p of points) {
    const c = el("circle", { cx: x(p.t), cy: y(p.ms), r: p.kind === "cold" ? 6 : 4, class: `pt ${p.kind}` });
    c.append(el("title", {}, `${p.kind} ${p.ms.toFixed(1)} ms`));
    svg.append(c);
  }
  svg.append(el("text", { x: PAD.left, y: H - 8, class: "tick" }, "time →"));
  svg.append(el("text", { x: W - PAD.right, y: H - 8, class: "tick", "text-anchor": "end" },
    `${Math.round(t1 - t0)} s`));
}

function median(values) {
  if (!values.length) return 0;
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Groups {label, kind, values: [ms]}: a bar of the median per group, count on top. */
export function coldWarmChart(svg, groups) {
  svg.replaceChildren();
  const W = size(svg);
  const medians = groups.map((g) => median(g.values));
  const maxY = niceMax(Math.max(1, ...medians));
  axes(svg, maxY, "ms", W);
  const w = W - PAD.left - PAD.right;
  const h = H - PAD.top - PAD.bottom;
  const slot = w / groups.length;
  groups.forEach((g, i) => {
    const bh = (medians[i] / maxY) * h;
    const x = PAD.left + i * slot + slot * 0.2;
    const bar = el("rect", { x, y: PAD.top + h - bh, width: slot * 0.6, height: Math.max(bh, 1), class: `bar ${g.kind}` });
    bar.append(el("title", {}, `${g.label}: ${g.values.length} invocations, median ${medians[i].toFixed(1)} ms`));
    svg.append(bar);
    svg.append(el("text", { x: x + slot * 0.3, y: PAD.top + h - bh - 6, class: "val", "text-anchor": "middle" },
      g.values.length ? `${medians[i].toFixed(1)} ms · n=${g.values.length}` : "n=0"));
    svg.append(el("text", { x: x + slot * 0.3, y: H - 8, class: "tick", "text-anchor": "middle" }, g.label));
  });
}
