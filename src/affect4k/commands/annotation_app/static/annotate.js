// The annotation page: one video, one dimension, a value bar recorded on the video's own clock.
//
// The trace is one slot per clip frame (frame f is video time f / 25 s, the clip's frame
// grid). While the video plays, every frame the browser presents (requestVideoFrameCallback,
// or the playback position where that is missing) fills the slots since the last one, each
// with the value the bar held at that slot's video time: value changes are logged with
// video.currentTime, never wall time, so pauses, stalls, dropped frames and seeks cannot shift
// a label. A run of recording starts wherever playback starts; frames never played stay empty
// and are not saved. After the page opens and after every seek the bar follows the trace
// already recorded, so replaying a part changes nothing until the annotator moves the bar;
// from that moment on the replay overwrites.
//
// Drawing is split by layer (drawBar, drawTimeline: trace, grid, playhead) so a later overlay
// (a subject box on the video) adds its own draw function to `animate`.
"use strict";

const [, , VIDEO, DIMENSION] = decodeURIComponent(location.pathname).split("/");
const KEY_STEP = 0.05;
const SHIFT_STEP = 0.25;
const SEEK_STEP_S = 2;
const BUILD_POLL_MS = 500;
//: Grid lines of the trace strip, labelled in the axis beside it.
const GRID = [1, 0.5, 0, -0.5, -1];

const video = document.getElementById("video");
const bar = document.getElementById("bar");
const timeline = document.getElementById("timeline");
const message = document.getElementById("message");
const subjectBox = document.getElementById("subject-box");
const showSubject = document.getElementById("show-subject");

let fps = 25;
let slots = new Float64Array(0); // NaN = not annotated
let value = 0;
let run = null; // {lastFrame, held, moved}: the recording since playback (re)started
let changes = []; // [videoTime, value] since the last recorded frame
let paused = null; // the run a pause ended, until playback resumes or the position changes
let following = true; // the bar follows the recorded trace: no input since opening or seeking
let revision = 0; // counts changes to the slots
let savedRevision = 0; // the revision the last successful save held
let version = null; // the server's version of the saved trace this page continues
let errorKind = null; // what the error on screen is about ("save", "play"), until resolved
let saving = Promise.resolve();
let gamepad = { axis: null, button: false };
let boxes = null; // the subject's box per frame (clip pixels) or null: the faces stage's choice

const clamp = (x) => Math.max(-1, Math.min(1, x));
const frameAt = (time) => Math.min(slots.length - 1, Math.floor(time * fps + 1e-6));
const playing = () => !video.paused && !video.ended;

// `kind` names what an error is about; it stays on screen until that is resolved (a save
// succeeds, playback starts), and any later message replaces it.
function show(text, kind = null) {
  message.textContent = text;
  message.className = kind ? "error" : "";
  errorKind = kind;
}

function resolved(kind) {
  if (errorKind === kind) show("");
}

const dirty = () => revision !== savedRevision;

function markUnsaved() {
  document.body.dataset.unsaved = dirty();
}

function setSlot(k, v) {
  if (Object.is(slots[k], v)) return;
  slots[k] = v;
  revision++;
}

// The annotator moved the bar (keys, mouse, gamepad): recorded from this video time on.
function setValue(next) {
  next = clamp(Math.round(next * 10000) / 10000);
  if (next === value) return;
  following = false;
  value = next;
  if (run) changes.push([video.currentTime, value]);
  drawBar();
}

// The bar shows the recorded trace (while following); nothing is recorded by this.
function followTrace(frame) {
  if (!following || frame < 0 || Number.isNaN(slots[frame])) return;
  value = slots[frame];
  drawBar();
}

// Fill the slots after the run's last frame up to `frame` with the value held at each one.
// Until the annotator moves, a frame already recorded keeps its value (and the bar shows it).
function recordUntil(frame) {
  if (!run || frame <= run.lastFrame) return;
  for (let k = run.lastFrame + 1; k <= frame; k++) {
    while (changes.length && changes[0][0] <= k / fps + 1e-6) {
      run.held = changes.shift()[1];
      run.moved = true;
    }
    if (!run.moved && !Number.isNaN(slots[k])) run.held = slots[k];
    else setSlot(k, run.held);
  }
  run.lastFrame = frame;
  followTrace(frame);
  markUnsaved();
}

function startRun() {
  // Playing on: a failed save's message is stale now (the page stays marked unsaved, and the
  // next pause saves again and says how that went).
  resolved("play");
  resolved("save");
  const first = frameAt(video.currentTime);
  // Resuming from a pause: playback restarts after the last frame shown, which the position
  // read at the pause can lag by a frame or two; those frames played with the pause's value.
  if (paused) {
    for (let k = paused.lastFrame + 1; k < first; k++) {
      if (paused.moved || Number.isNaN(slots[k])) setSlot(k, paused.held);
    }
  }
  paused = null;
  run = { lastFrame: first - 1, held: value, moved: !following };
  changes = [];
}

function stopRun() {
  recordUntil(frameAt(video.currentTime));
  // A move after the last recorded frame holds for the frames the pause leaves unplayed.
  if (changes.length) Object.assign(run, { held: value, moved: true });
  changes = [];
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
  if (video.paused || video.ended) video.play().catch((error) => show(error.message, "play"));
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
video.addEventListener("seeking", () => {
  run = null;
  paused = null;
  following = true;
  followTrace(frameAt(video.currentTime));
});
video.addEventListener("seeked", () => { if (playing()) startRun(); });
video.addEventListener("play", () => { document.getElementById("play").textContent = "Pause"; });
video.addEventListener("pause", () => {
  document.getElementById("play").textContent = "Play";
  if (dirty()) save(false);
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

// The strip's axis: one label per grid line, at the height the canvas draws it.
function drawAxis() {
  const axis = document.getElementById("axis");
  axis.replaceChildren(
    ...GRID.map((v) => {
      const tick = document.createElement("span");
      tick.className = "tick";
      tick.textContent = v === 0 ? "0" : `${v > 0 ? "+" : "\u2212"}${Math.abs(v)}`;
      tick.style.top = `${((1 - v) / 2) * 100}%`;
      return tick;
    }),
  );
  document.getElementById("axis-title").textContent = DIMENSION;
}

function drawTimeline() {
  // Drawn at the device's pixel density, so thin grid lines and ±0.1 stay legible.
  const scale = window.devicePixelRatio || 1;
  const width = Math.round(timeline.clientWidth * scale);
  const height = Math.round(timeline.clientHeight * scale);
  if (timeline.width !== width || timeline.height !== height) {
    timeline.width = width;
    timeline.height = height;
  }
  const context = timeline.getContext("2d");
  context.clearRect(0, 0, width, height);
  const x = (frame) => (frame / Math.max(1, slots.length)) * width;
  const y = (v) => ((1 - v) / 2) * (height - 2 * scale) + scale;
  for (const v of GRID) {
    context.strokeStyle = v === 0 ? "#777" : "#3a3e45";
    context.lineWidth = scale;
    context.beginPath();
    context.moveTo(0, y(v));
    context.lineTo(width, y(v));
    context.stroke();
  }
  context.strokeStyle = "#4f9dff";
  context.lineWidth = 2 * scale;
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
  context.fillRect(x(video.currentTime * fps) - scale, 0, 2 * scale, height);
  const duration = slots.length / fps;
  document.getElementById("clock").textContent =
    `${Math.min(video.currentTime, duration).toFixed(2)} / ${duration.toFixed(2)} s`;
}

// The subject's box over the picture, where the video element shows it (letterboxed to fit).
function drawSubjectBox() {
  const box = boxes && showSubject.checked && video.videoWidth ? boxes[frameAt(video.currentTime)] : null;
  subjectBox.hidden = !box;
  if (!box) return;
  const scale = Math.min(video.clientWidth / video.videoWidth, video.clientHeight / video.videoHeight);
  const left = video.offsetLeft + (video.clientWidth - scale * video.videoWidth) / 2;
  const top = video.offsetTop + (video.clientHeight - scale * video.videoHeight) / 2;
  subjectBox.style.left = `${left + scale * box[0]}px`;
  subjectBox.style.top = `${top + scale * box[1]}px`;
  subjectBox.style.width = `${scale * (box[2] - box[0])}px`;
  subjectBox.style.height = `${scale * (box[3] - box[1])}px`;
}

function animate() {
  pollGamepad();
  if (run && playing() && !("requestVideoFrameCallback" in video)) {
    recordUntil(frameAt(video.currentTime));
  }
  drawTimeline();
  drawSubjectBox();
  requestAnimationFrame(animate);
}

// ---- server

function agreementTable(id, result) {
  const table = document.createElement("table");
  table.id = id;
  table.createTHead().insertRow().append(
    ...["with", "r", "frames"].map((text) => Object.assign(document.createElement("th"), { textContent: text })),
  );
  const body = table.createTBody();
  for (const pair of result.pairs) {
    const row = body.insertRow();
    row.dataset.annotator = pair.annotator;
    row.insertCell().textContent = pair.annotator;
    row.insertCell().textContent = pair.r;
    row.insertCell().textContent = pair.frames;
  }
  return table;
}

function showAgreement(agreement, status) {
  const section = document.getElementById("agreement");
  section.replaceChildren();
  const heading = document.createElement("h2");
  heading.textContent = `Agreement on ${DIMENSION} (Pearson r of your trace with each other annotator's)`;
  section.append(heading);
  const note = document.createElement("p");
  if (agreement.error) {
    note.textContent = agreement.error;
    section.append(note);
    return;
  }
  if (!status.done) {
    note.textContent = status.skipped
      ? "You marked this video skipped: it is left out of the agreement."
      : "Shown once your trace is saved as done.";
    section.append(note);
    return;
  }
  const skipped = new Set(agreement.skipped);
  const pairsOf = (result, here) => ({
    pairs: result.pairs.map((pair) => ({
      ...pair,
      r: here && skipped.has(pair.annotator)
        ? "skipped"
        : pair.pearson_r === null ? "not saved yet" : pair.pearson_r.toFixed(3),
    })),
  });
  const pooled = agreement.pooled;
  const parts = [
    ["agreement-video", "On this video", agreement.video, true],
    [
      "agreement-pooled",
      `Pooled over ${pooled.videos === pooled.of ? "all" : `${pooled.videos} of`} ${pooled.of} videos (frames of every video together, as in agreement.csv)`,
      pooled,
      false,
    ],
  ];
  for (const [id, label, result, here] of parts) {
    const figure = document.createElement("figure");
    const caption = document.createElement("figcaption");
    caption.textContent = label;
    figure.append(caption, agreementTable(id, pairsOf(result, here)));
    if (result.others_mean_r !== null) {
      const others = document.createElement("p");
      others.textContent = `The others agree among themselves at mean r = ${result.others_mean_r.toFixed(3)}.`;
      figure.append(others);
    }
    section.append(figure);
  }
}

// The calibration clip's result instead of the agreement: the measured lag and accuracy.
function showCalibration(result, status) {
  const section = document.getElementById("agreement");
  section.replaceChildren();
  const heading = document.createElement("h2");
  heading.textContent = `Calibration on ${DIMENSION}: follow the ${DIMENSION} gauge`;
  const note = document.createElement("p");
  note.id = "calibration";
  if (!status.done || result === null) {
    note.textContent = "Your reaction lag and accuracy are shown once your trace is saved as done.";
  } else if (result.error) {
    note.textContent = result.error;
  } else {
    note.dataset.lag = result.lag_s;
    note.dataset.ccc = result.ccc;
    note.textContent = `Your reaction lag: ${result.lag_s.toFixed(2)} s (the shift within 0–${result.max_lag_s} s that best matches the gauge); accuracy: CCC ${result.ccc === null ? "undefined" : result.ccc.toFixed(3)} with the gauge at that lag (1 = exact).`;
  }
  section.append(heading, note);
}

function showState(state) {
  version = state.version;
  if ("calibration" in state) showCalibration(state.calibration, state.status);
  else showAgreement(state.agreement, state.status);
  document.body.dataset.done = state.status.done;
  document.body.dataset.draft = state.status.draft;
  document.body.dataset.skipped = state.status.skipped;
}

function save(done) {
  const times = [];
  const values = [];
  slots.forEach((v, frame) => {
    if (!Number.isNaN(v)) { times.push(frame / fps); values.push(v); }
  });
  const sent = revision;
  saving = saving.then(async () => {
    const body = JSON.stringify({ time_s: times, value: values, done, version });
    const response = await fetch(`/api/traces/${encodeURIComponent(VIDEO)}/${DIMENSION}`, {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      body,
    });
    const answer = await response.json();
    if (!response.ok) {
      const why = response.status === 409
        ? `${answer.error} (your changes here are kept until you leave the page)`
        : answer.error;
      show(`not saved: ${why}`, "save");
      document.body.dataset.conflict = response.status === 409;
      return;
    }
    savedRevision = sent;
    markUnsaved();
    showState(answer);
    show(done ? `saved as done (${times.length} frames)` : `draft saved (${times.length} frames)`);
    document.body.dataset.saved = done ? "done" : "draft";
  }).catch((error) => show(`not saved: ${error.message}`, "save"));
  return saving;
}

// Until a save succeeds, leaving the page asks first (a failed save leaves it unsaved).
window.addEventListener("beforeunload", (event) => {
  if (dirty()) event.preventDefault();
});

// Continue an unfinished trace where it stops, with the bar at its last value; a finished one
// starts at its first frame with the bar on its first value.
function resume() {
  const next = slots.findIndex((v) => Number.isNaN(v));
  if (next < 0) {
    followTrace(0);
    return;
  }
  if (next === 0) return;
  video.currentTime = next / fps;
  value = slots[next - 1];
  drawBar();
}

// While the server builds the web copy, say how far it got (Snakemake's jobs, the job's log).
async function watchBuild(done) {
  while (!done.value) {
    await new Promise((resolve) => setTimeout(resolve, BUILD_POLL_MS));
    if (done.value) return;
    try {
      const response = await fetch(`/api/build/${encodeURIComponent(VIDEO)}`);
      const { build } = await response.json();
      if (!build || done.value) continue;
      let text = `building ${build.target}`;
      if (build.waiting) text += ": waiting for another video's build";
      else if (build.job) {
        text += `: ${build.job}`;
        if (build.total) text += ` (${build.done} of ${build.total} jobs done)`;
        if (build.log) text += ` \u2014 ${build.log}`;
      } else text += ": starting Snakemake";
      show(`${text}\u2026`);
    } catch {
      return;
    }
  }
}

async function loadSubjectBoxes() {
  const toggle = document.getElementById("subject-toggle");
  try {
    const response = await fetch(`/api/subject/${encodeURIComponent(VIDEO)}`);
    boxes = response.ok ? (await response.json()).boxes : null;
  } catch {
    boxes = null;
  }
  showSubject.addEventListener("change", () => showSubject.blur()); // keys stay the page's
  if (!boxes) toggle.title = "no subject box: the faces stage has not run for this video yet";
  toggle.classList.toggle("unavailable", !boxes);
}

async function start() {
  const name = VIDEO === "_calibration" ? "calibration clip" : VIDEO;
  document.getElementById("title").textContent = `${name} \u2014 ${DIMENSION}`;
  drawAxis();
  show("preparing the video\u2026");
  const loaded = { value: false };
  watchBuild(loaded);
  let response;
  try {
    response = await fetch(`/api/traces/${encodeURIComponent(VIDEO)}/${DIMENSION}`);
  } finally {
    loaded.value = true;
  }
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
  await loadSubjectBoxes();
  if (state.values) resume();
  requestAnimationFrame(animate);
  let ready = state.values ? "resumed the saved trace" : "ready: press space to play";
  if (state.status.skipped) ready = "you marked this video skipped; saving a trace replaces that";
  show(ready);
  document.body.dataset.state = "ready";
}

start().catch((error) => {
  show(`error: ${error.message}`, "load");
  document.body.dataset.state = "error";
});
