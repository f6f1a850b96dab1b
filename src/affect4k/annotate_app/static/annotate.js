// The annotation page: one video, one dimension, a value bar recorded on the video's own clock.
//
// The trace is one slot per clip frame (frame f is video time f / 25 s, the clip's frame
// grid). While the video plays, every frame the browser presents (requestVideoFrameCallback,
// or the playback position where that is missing) fills the slots since the last one, each
// with the value the bar held at that slot's video time: value changes are logged with
// video.currentTime, never wall time, so pauses, stalls, dropped frames and seeks cannot shift
// a label. A run of recording starts wherever playback starts, so replaying a part overwrites
// it; frames never played stay empty and are not saved.
"use strict";

const [, , VIDEO, DIMENSION] = decodeURIComponent(location.pathname).split("/");
const KEY_STEP = 0.05;
const SHIFT_STEP = 0.25;
const SEEK_STEP_S = 2;

const video = document.getElementById("video");
const bar = document.getElementById("bar");
const timeline = document.getElementById("timeline");
const message = document.getElementById("message");

let fps = 25;
let slots = new Float64Array(0); // NaN = not annotated
let value = 0;
let run = null; // {lastFrame, held}: the recording since playback (re)started
let changes = []; // [videoTime, value] since the last recorded frame
let paused = null; // the run a pause ended, until playback resumes or the position changes
let dirty = false;
let saving = Promise.resolve();
let gamepad = { axis: null, button: false };

const clamp = (x) => Math.max(-1, Math.min(1, x));
const frameAt = (time) => Math.min(slots.length - 1, Math.floor(time * fps + 1e-6));
const playing = () => !video.paused && !video.ended;

function show(text, isError = false) {
  message.textContent = text;
  message.className = isError ? "error" : "";
}

function setValue(next) {
  next = clamp(Math.round(next * 10000) / 10000);
  if (next === value) return;
  value = next;
  if (run) changes.push([video.currentTime, value]);
  drawBar();
}

// Fill the slots after the run's last frame up to `frame` with the value held at each one.
function recordUntil(frame) {
  if (!run || frame <= run.lastFrame) return;
  for (let k = run.lastFrame + 1; k <= frame; k++) {
    let held = run.held;
    for (const [time, changed] of changes) if (time <= k / fps + 1e-6) held = changed;
    slots[k] = held;
  }
  run.lastFrame = frame;
  run.held = value;
  changes = [];
  dirty = true;
}

function startRun() {
  const first = frameAt(video.currentTime);
  // Resuming from a pause: playback restarts after the last frame shown, which the position
  // read at the pause can lag by a frame or two; those frames played with the pause's value.
  if (paused) for (let k = paused.lastFrame + 1; k < first; k++) slots[k] = paused.held;
  paused = null;
  run = { lastFrame: first - 1, held: value };
  changes = [];
}

function stopRun() {
  recordUntil(frameAt(video.currentTime));
  paused = run;
  run = null;
}

function onFrame(_now, metadata) {
  if (run && playing()) recordUntil(Math.min(slots.length - 1, Math.round(metadata.mediaTime * fps)));
  video.requestVideoFrameCallback(onFrame);
}

function seekTo(time) {
  if (run) stopRun();
  paused = null;
  video.currentTime = Math.max(0, Math.min(video.duration || 0, time));
}

function togglePlay() {
  if (video.paused || video.ended) video.play().catch((error) => show(error.message, true));
  else video.pause();
}

// ---- input: keyboard, mouse / trackpad on the bar, gamepad (polled every animation frame)

document.addEventListener("keydown", (event) => {
  const step = event.shiftKey ? SHIFT_STEP : KEY_STEP;
  const actions = {
    " ": () => togglePlay(),
    ArrowUp: () => setValue(value + step),
    ArrowDown: () => setValue(value - step),
    ArrowLeft: () => seekTo(video.currentTime - SEEK_STEP_S),
    ArrowRight: () => seekTo(video.currentTime + SEEK_STEP_S),
  };
  const action = actions[event.key];
  if (!action) return;
  event.preventDefault();
  if (event.key === " " && event.repeat) return;
  action();
});

function valueFromPointer(event) {
  const box = bar.getBoundingClientRect();
  setValue(1 - (2 * (event.clientY - box.top)) / box.height);
}
bar.addEventListener("pointerdown", (event) => {
  bar.setPointerCapture(event.pointerId);
  valueFromPointer(event);
});
bar.addEventListener("pointermove", (event) => {
  if (bar.hasPointerCapture(event.pointerId)) valueFromPointer(event);
});

function pollGamepad() {
  const pads = navigator.getGamepads ? Array.from(navigator.getGamepads()) : [];
  const pad = pads.find((p) => p && p.connected !== false && p.axes && p.axes.length >= 2);
  if (!pad) return;
  document.getElementById("input").textContent = `input: gamepad ${pad.id}, keyboard, mouse`;
  const axis = pad.axes[1];
  // The stick sets the value once it moves (not on detection: a resting stick would reset a
  // resumed value). Up is negative on the standard mapping: pushed up = a higher value.
  if (gamepad.axis !== null && Math.abs(axis - gamepad.axis) > 0.002) setValue(-axis);
  if (gamepad.axis === null || Math.abs(axis - gamepad.axis) > 0.002) gamepad.axis = axis;
  const pressed = Boolean(pad.buttons && pad.buttons[0] && pad.buttons[0].pressed);
  if (pressed && !gamepad.button) togglePlay();
  gamepad.button = pressed;
}

for (const button of document.querySelectorAll("button")) {
  button.addEventListener("mousedown", (event) => event.preventDefault()); // keep keys on the page
}
document.getElementById("play").addEventListener("click", togglePlay);
document.getElementById("save-draft").addEventListener("click", () => save(false));
document.getElementById("save").addEventListener("click", () => save(true));
timeline.addEventListener("click", (event) => {
  const box = timeline.getBoundingClientRect();
  seekTo(((event.clientX - box.left) / box.width) * (slots.length / fps));
});

video.addEventListener("play", startRun);
video.addEventListener("pause", stopRun); // also fires at the end, filling the last frames
video.addEventListener("seeking", () => { run = null; paused = null; });
video.addEventListener("seeked", () => { if (playing()) startRun(); });
video.addEventListener("play", () => { document.getElementById("play").textContent = "Pause"; });
video.addEventListener("pause", () => {
  document.getElementById("play").textContent = "Play";
  if (dirty) save(false);
});

// ---- drawing

function drawBar() {
  const top = ((1 - value) / 2) * 100;
  const fill = document.getElementById("fill");
  fill.style.top = `${Math.min(top, 50)}%`;
  fill.style.height = `${Math.abs(top - 50)}%`;
  fill.classList.toggle("negative", value < 0);
  document.getElementById("marker").style.top = `${top}%`;
  bar.setAttribute("aria-valuenow", value.toFixed(2));
  document.getElementById("value").textContent =
    `${DIMENSION} ${value >= 0 ? "+" : "\u2212"}${Math.abs(value).toFixed(2)}`;
}

function drawTimeline() {
  const context = timeline.getContext("2d");
  const { width, height } = timeline;
  context.clearRect(0, 0, width, height);
  const x = (frame) => (frame / Math.max(1, slots.length)) * width;
  const y = (v) => ((1 - v) / 2) * height;
  context.strokeStyle = "#555";
  context.beginPath();
  context.moveTo(0, height / 2);
  context.lineTo(width, height / 2);
  context.stroke();
  context.strokeStyle = "#4f9dff";
  context.lineWidth = 2;
  context.beginPath();
  let drawing = false;
  slots.forEach((v, frame) => {
    if (Number.isNaN(v)) { drawing = false; return; }
    if (drawing) context.lineTo(x(frame), y(v));
    else context.moveTo(x(frame), y(v));
    drawing = true;
  });
  context.stroke();
  context.fillStyle = "#fff";
  context.fillRect(x(video.currentTime * fps) - 1, 0, 2, height);
  const duration = slots.length / fps;
  document.getElementById("clock").textContent =
    `${Math.min(video.currentTime, duration).toFixed(2)} / ${duration.toFixed(2)} s`;
}

function animate() {
  pollGamepad();
  if (run && playing() && !("requestVideoFrameCallback" in video)) {
    recordUntil(frameAt(video.currentTime));
  }
  drawTimeline();
  requestAnimationFrame(animate);
}

// ---- server

function showAgreement(agreement, status) {
  const section = document.getElementById("agreement");
  section.replaceChildren();
  const heading = document.createElement("h2");
  heading.textContent = `Agreement on ${DIMENSION} for this video (Pearson r, as in agreement.csv)`;
  section.append(heading);
  const note = document.createElement("p");
  if (agreement.error) {
    note.textContent = agreement.error;
  } else if (!status.done) {
    note.textContent = "Shown once your trace is saved as done.";
  } else {
    const table = document.createElement("table");
    table.id = "agreement-table";
    table.createTHead().insertRow().append(
      ...["with", "r", "frames"].map((text) => Object.assign(document.createElement("th"), { textContent: text })),
    );
    const body = table.createTBody();
    for (const pair of agreement.pairs) {
      const row = body.insertRow();
      row.dataset.annotator = pair.annotator;
      row.insertCell().textContent = pair.annotator;
      row.insertCell().textContent = pair.pearson_r === null ? "not saved yet" : pair.pearson_r.toFixed(3);
      row.insertCell().textContent = pair.frames;
    }
    section.append(table);
    if (agreement.others_mean_r !== null) {
      note.textContent = `The others agree among themselves at mean r = ${agreement.others_mean_r.toFixed(3)}.`;
    }
  }
  section.append(note);
}

function showState(state) {
  showAgreement(state.agreement, state.status);
  document.body.dataset.done = state.status.done;
  document.body.dataset.draft = state.status.draft;
}

function save(done) {
  const times = [];
  const values = [];
  slots.forEach((v, frame) => {
    if (!Number.isNaN(v)) { times.push(frame / fps); values.push(v); }
  });
  const body = JSON.stringify({ time_s: times, value: values, done });
  dirty = false;
  saving = saving.then(async () => {
    const response = await fetch(`/api/traces/${encodeURIComponent(VIDEO)}/${DIMENSION}`, {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      body,
    });
    const answer = await response.json();
    if (!response.ok) {
      if (done) dirty = true;
      show(`not saved: ${answer.error}`, true);
      return;
    }
    showState(answer);
    show(done ? `saved as done (${times.length} frames)` : `draft saved (${times.length} frames)`);
    document.body.dataset.saved = done ? "done" : "draft";
  }).catch((error) => show(`not saved: ${error.message}`, true));
  return saving;
}

window.addEventListener("beforeunload", (event) => {
  if (dirty) event.preventDefault();
});

// Continue an unfinished trace where it stops, with the bar at its last value.
function resume() {
  const next = slots.findIndex((v) => Number.isNaN(v));
  if (next <= 0) return;
  video.currentTime = next / fps;
  setValue(slots[next - 1]);
}

async function start() {
  document.getElementById("title").textContent = `${VIDEO} \u2014 ${DIMENSION}`;
  show("preparing the video\u2026");
  const response = await fetch(`/api/traces/${encodeURIComponent(VIDEO)}/${DIMENSION}`);
  const state = await response.json();
  if (!response.ok) throw new Error(state.error);
  fps = state.fps;
  slots = new Float64Array(state.frames).fill(NaN);
  if (state.values) state.values.forEach((v, frame) => { if (v !== null) slots[frame] = v; });
  document.getElementById("who").textContent = `annotator: ${state.annotator}`;
  showState(state);
  video.src = state.media;
  if ("requestVideoFrameCallback" in video) video.requestVideoFrameCallback(onFrame);
  await new Promise((resolve, reject) => {
    video.addEventListener("loadeddata", resolve, { once: true });
    video.addEventListener("error", () => reject(new Error("the video cannot be played")), { once: true });
  });
  drawBar();
  if (state.values) resume();
  requestAnimationFrame(animate);
  show(state.values ? "resumed the saved trace" : "ready: press space to play");
  document.body.dataset.state = "ready";
}

start().catch((error) => {
  show(`error: ${error.message}`, true);
  document.body.dataset.state = "error";
});
