// The list of the config's videos with this annotator's status per dimension.
"use strict";

const DIMENSIONS = ["valence", "arousal"];

function statusText(status) {
  if (status.done) return status.draft ? "done (draft newer)" : "done";
  if (status.draft) return "in progress";
  return status.skipped ? "skipped" : "not started";
}

async function showVideos() {
  const response = await fetch("/api/videos");
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error);
  document.getElementById("who").textContent = `annotator: ${answer.annotator}`;
  const body = document.querySelector("#videos tbody");
  // The calibration clip first: a known signal, traced once, measures your reaction lag.
  const calibration = { ...answer.calibration, name: "calibration clip (trace it first)" };
  for (const entry of [calibration, ...answer.videos]) {
    const row = body.insertRow();
    row.dataset.video = entry.video;
    row.insertCell().textContent = entry.name ?? entry.video;
    for (const dimension of DIMENSIONS) {
      const link = document.createElement("a");
      link.href = `/annotate/${encodeURIComponent(entry.video)}/${dimension}`;
      link.textContent = statusText(entry[dimension]);
      const status = entry[dimension];
      link.className = status.done ? "done" : status.draft ? "draft" : status.skipped ? "skipped" : "todo";
      const cell = row.insertCell();
      cell.dataset.dimension = dimension;
      cell.append(link);
    }
  }
}

showVideos().catch((error) => {
  document.getElementById("message").textContent = `error: ${error.message}`;
});
