// The map of the songs on the pad: dots coloured by song, folder or a feature; pad coordinates
// u, v in 0..1 (v upwards), as the checkpoint's window_map stores them.

const GOLDEN = 137.508;

function ramp(t) {  // 0..1 -> blue .. yellow .. red
  const hue = 240 - 240 * Math.min(1, Math.max(0, t));
  return `hsl(${hue}, 80%, 55%)`;
}

function folderOf(name) {
  const slash = name.indexOf("/");
  return slash > 0 ? name.slice(0, slash) : ".";
}

export function colours(map, by) {
  const n = map.u.length;
  const out = new Array(n);
  if (by === "register" || by === "density") {
    const values = by === "register" ? map.register : map.density;
    const lo = Math.min(...values), hi = Math.max(...values);
    for (let i = 0; i < n; i++) out[i] = ramp(hi > lo ? (values[i] - lo) / (hi - lo) : 0.5);
  } else if (by === "major") {
    for (let i = 0; i < n; i++) out[i] = map.major[i] ? "#f2c14e" : "#4e8ff2";
  } else {
    const groups = by === "folder" ? map.songs.map(folderOf) : map.songs;
    const index = new Map();
    for (const g of groups) if (!index.has(g)) index.set(g, index.size);
    for (let i = 0; i < n; i++) out[i] = `hsl(${(index.get(groups[map.song[i]]) * GOLDEN) % 360}, 70%, 60%)`;
  }
  return out;
}

export function legend(map, by) {
  if (by === "major") return "yellow: major, blue: minor";
  if (by === "register") return `blue: low (${Math.min(...map.register).toFixed(0)}) … red: high (${Math.max(...map.register).toFixed(0)})`;
  if (by === "density") return `blue: sparse … red: dense (${Math.max(...map.density).toFixed(1)} notes a frame)`;
  return "";
}

// Draws the dots once onto an offscreen canvas of the pad's size; returns it.
export function drawDots(map, by, width, height) {
  const canvas = document.createElement("canvas");
  canvas.width = width; canvas.height = height;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#161616";
  ctx.fillRect(0, 0, width, height);
  ctx.strokeStyle = "#2a2a2a";
  for (let i = 1; i < 4; i++) {  // a quarter grid, so the pad's scale is seen without dots
    ctx.beginPath(); ctx.moveTo(i * width / 4, 0); ctx.lineTo(i * width / 4, height); ctx.stroke();
    ctx.beginPath(); ctx.moveTo(0, i * height / 4); ctx.lineTo(width, i * height / 4); ctx.stroke();
  }
  if (!map) return canvas;
  const fill = colours(map, by);
  const r = Math.max(2, Math.min(width, height) / 150);
  ctx.globalAlpha = 0.75;
  for (let i = 0; i < map.u.length; i++) {
    ctx.fillStyle = fill[i];
    ctx.beginPath();
    ctx.arc(map.u[i] * width, (1 - map.v[i]) * height, r, 0, 2 * Math.PI);
    ctx.fill();
  }
  return canvas;
}

// The dot nearest to pad position (x, y), or -1 when none lies within `radius` (pad units).
export function nearest(map, x, y, radius = 0.03) {
  if (!map) return -1;
  let best = -1, bestD = radius * radius;
  for (let i = 0; i < map.u.length; i++) {
    const d = (map.u[i] - x) ** 2 + (map.v[i] - y) ** 2;
    if (d < bestD) { bestD = d; best = i; }
  }
  return best;
}

export function describe(map, i) {
  const at = map.at_unit === "bar" ? `bar ${map.at[i]}` : `${map.at[i]} s`;
  return `${map.songs[map.song[i]]}, ${at} · register ${map.register[i].toFixed(0)}, ` +
         `${map.density[i].toFixed(1)} notes a frame, ${map.major[i] ? "major" : "minor"}`;
}
