// The page: the pad over the map, the controls, the status; one module per job beside it.
import { connect } from "./socket.js";
import { describe, drawDots, legend, nearest } from "./map.js";

const $ = (id) => document.getElementById(id);
const pad = $("pad");
const ctx = pad.getContext("2d");
const TRAIL = 90;  // positions kept: 3 s of state at 30 a second

let map = null, dots = null, colourBy = "song", state = null, status = {}, trail = [], picked = -1;
let pending = null;  // the latest pad position not yet sent (one send per animation frame)

function resize() {
  const scale = window.devicePixelRatio || 1;
  pad.width = Math.round(pad.clientWidth * scale);
  pad.height = Math.round(pad.clientHeight * scale);
  dots = drawDots(map, colourBy, pad.width, pad.height);
  document.body.dataset.dots = map ? map.u.length : 0;
}

function toPixels([x, y]) { return [x * pad.width, (1 - y) * pad.height]; }

function draw() {
  if (pending) { link.send("xy", pending); pending = null; }
  if (dots) ctx.drawImage(dots, 0, 0);
  const unit = Math.min(pad.width, pad.height) / 100;
  ctx.lineWidth = unit / 2;
  ctx.strokeStyle = "#ffffffaa";
  ctx.beginPath();
  trail.forEach((p, i) => { const [px, py] = toPixels(p); i ? ctx.lineTo(px, py) : ctx.moveTo(px, py); });
  ctx.stroke();
  if (trail.length) {  // where the sound is now
    const [px, py] = toPixels(trail[trail.length - 1]);
    ctx.fillStyle = "#fff";
    ctx.beginPath(); ctx.arc(px, py, 1.6 * unit, 0, 2 * Math.PI); ctx.fill();
  }
  if (state && state.touched) {  // where the controller (this page or another) points
    const [px, py] = toPixels([state.x, state.y]);
    ctx.strokeStyle = state.hold ? "#e77" : "#7cf";
    ctx.lineWidth = unit / 2;
    ctx.beginPath(); ctx.arc(px, py, 3 * unit, 0, 2 * Math.PI); ctx.stroke();
  }
  if (picked >= 0) {
    const [px, py] = toPixels([map.u[picked], map.v[picked]]);
    ctx.strokeStyle = "#fff";
    ctx.strokeRect(px - unit, py - unit, 2 * unit, 2 * unit);
  }
  requestAnimationFrame(draw);
}

function padPosition(event) {
  const box = pad.getBoundingClientRect();
  const x = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
  const y = Math.min(1, Math.max(0, 1 - (event.clientY - box.top) / box.height));
  return [x, y];
}

function touch(event) {
  if (event.type === "pointermove" && !pad.hasPointerCapture(event.pointerId)) return;
  if (event.type === "pointerdown") pad.setPointerCapture(event.pointerId);
  pending = padPosition(event);
  picked = nearest(map, ...pending);
  $("under").textContent = picked >= 0 ? describe(map, picked) : "";
  event.preventDefault();
}

function showStatus() {
  const parts = [];
  if (status.tempo) parts.push(`${status.tempo.toFixed(1)} bpm`);
  if (status.sync) parts.push(status.sync);
  if (status.clock) parts.push(status.clock);
  if (status.notes_per_s !== undefined) parts.push(`${status.notes_per_s.toFixed(1)} notes/s`);
  if (state && state.hold) parts.push("held");
  const extra = legend(map || { register: [0], density: [0] }, colourBy);
  $("status").textContent = parts.join(" · ") + (map && extra ? ` · ${extra}` : "");
}

function setControls(controls) {
  for (const name of ["density", "temperature", "velocity", "transpose"]) {
    if (document.activeElement !== $(name)) $(name).value = controls[name];
  }
  if (document.activeElement !== $("key-strength")) $("key-strength").value = controls.key_strength;
  $("key").value = controls.key === null ? "none" : String(controls.key);
  $("scale").value = controls.scale;
  $("hold").checked = controls.hold;
}

function fillKeys(keys, scales) {  // the names the daemon knows (play/key.py), once, from the hello
  if ($("scale").options.length) return;
  keys.forEach((name, pc) => $("key").add(new Option(name, String(pc))));
  for (const name of scales) $("scale").add(new Option(name, name));
}

const link = connect({
  onHello(message) {
    map = message.map;
    window.vraeMap = map;  // for the browser test and the curious
    $("model").textContent = message.model + (map ? "" : " (no map in this checkpoint: vrae-live map --store)");
    state = message.controls; status = message.status;
    for (const axis of ["x", "y"]) {  // what the pad's edges play (a model trained with --pad-axes)
      const a = message.axes && message.axes[axis];
      $(`${axis}-low`).textContent = a ? `${a.low} (${a.name})` : "";
      $(`${axis}-high`).textContent = a ? a.high : "";
    }
    fillKeys(message.keys, message.scales);
    setControls(state);
    resize();
    document.body.dataset.state = "live";
    showStatus();
  },
  onState(message) {
    state = message.controls; status = message.status;
    if (status.at) { trail.push(status.at); if (trail.length > TRAIL) trail.shift(); }
    setControls(state);
    showStatus();
    document.body.dataset.version = state.version;
  },
  onApplied(seq) { document.body.dataset.applied = seq; },
  onClose(why) {
    document.body.dataset.state = why;
    $("status").textContent = why === "refused"
      ? "refused: open the URL serve printed (its #token), from a network --allow lets in"
      : "connection lost; retrying…";
  },
});

for (const type of ["pointerdown", "pointermove"]) pad.addEventListener(type, touch);
for (const name of ["density", "temperature", "velocity", "transpose"]) {
  $(name).addEventListener("input", () => link.send(name, Number($(name).value)));
}
$("key-strength").addEventListener("input", () => link.send("key-strength", Number($("key-strength").value)));
$("key").addEventListener("change", () => link.send("key", $("key").value === "none" ? "none" : Number($("key").value)));
$("scale").addEventListener("change", () => link.send("scale", $("scale").value));
$("hold").addEventListener("change", () => link.send("hold", $("hold").checked ? 1 : 0));
$("panic").addEventListener("click", () => link.send("panic"));
$("colour-by").addEventListener("change", () => { colourBy = $("colour-by").value; resize(); showStatus(); });
window.addEventListener("resize", resize);
window.addEventListener("hashchange", () => location.reload());  // a new token: connect afresh
resize();
requestAnimationFrame(draw);
