// The biodl model page: reads the model card, sends inputs to /predict and the first input to /explain.
// Plain DOM, no external code; user data is only ever inserted as text.
"use strict";

const $ = (id) => document.getElementById(id);
let card = null;

function show(id, visible) {
  $(id).hidden = !visible;
}

function setError(message) {
  $("error").textContent = message || "";
  show("error", Boolean(message));
}

function parseFeatureRows(text) {
  const trimmed = text.trim();
  if (trimmed.startsWith("[") || trimmed.startsWith("{")) {
    const value = JSON.parse(trimmed);
    if (Array.isArray(value) && value.length > 0 && (Array.isArray(value[0]) || typeof value[0] === "object")) {
      return value;
    }
    return [value];
  }
  return trimmed
    .split(/\n+/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .map((line) => line.split(/[\s,;]+/).filter((v) => v.length > 0).map(Number));
}

function parseStrings(text) {
  const lines = text.split(/\r?\n/).map((line) => line.trim());
  if (lines.some((line) => line.startsWith(">"))) {
    const records = [];
    for (const line of lines) {
      if (line.startsWith(">")) records.push("");
      else if (records.length > 0) records[records.length - 1] += line;
    }
    return records.filter((r) => r.length > 0);
  }
  return lines.filter((line) => line.length > 0);
}

function readImage(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).replace(/^data:[^,]*,/, ""));
    reader.onerror = () => reject(new Error("the image file could not be read"));
    reader.readAsDataURL(file);
  });
}

async function collectInputs() {
  const file = $("image").files && $("image").files[0];
  if (file) return [await readImage(file)];
  const text = $("input").value;
  if (!text.trim()) throw new Error("enter an input first");
  const type = card ? card.inputs.data_type : "tabular";
  if (type === "tabular") {
    try {
      return parseFeatureRows(text);
    } catch (err) {
      throw new Error("feature rows must be numbers separated by commas or spaces, or JSON: " + err.message);
    }
  }
  return parseStrings(text);
}

async function postJSON(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({ detail: response.statusText }));
  if (!response.ok) {
    const detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
    throw new Error(`${response.status}: ${detail}`);
  }
  return data;
}

function fmt(value) {
  if (value === null || value === undefined) return "–";
  return Number(value).toPrecision(4);
}

function describe(prediction) {
  const entries = Object.entries(prediction.probabilities || prediction.values || {});
  if (prediction.probabilities) entries.sort((a, b) => (b[1] ?? -1) - (a[1] ?? -1));
  return entries
    .slice(0, 5)
    .map(([name, value]) => `${name}: ${fmt(value)}`)
    .join(", ");
}

function renderPredictions(predictions) {
  const body = $("predictions").querySelector("tbody");
  body.replaceChildren();
  predictions.forEach((prediction, i) => {
    const row = document.createElement("tr");
    const index = document.createElement("td");
    index.textContent = String(i + 1);
    const label = document.createElement("td");
    label.className = "label";
    const values = prediction.values ? Object.values(prediction.values).map(fmt).join(", ") : "";
    label.textContent = prediction.label ?? values ?? "";
    const details = document.createElement("td");
    if (prediction.mask_png_base64) {
      const fractions = Object.entries(prediction.class_fractions || {});
      label.textContent = `mask ${prediction.height} × ${prediction.width}`;
      const img = document.createElement("img");
      img.className = "mask";
      img.alt = `predicted mask of input ${i + 1}`;
      img.src = "data:image/png;base64," + prediction.mask_png_base64;
      const text = document.createElement("div");
      text.textContent = fractions.map(([name, value]) => `${name}: ${fmt(value)}`).join(", ");
      details.append(img, text);
    } else {
      details.textContent = describe(prediction);
    }
    row.append(index, label, details);
    body.append(row);
  });
  show("result", true);
}

async function onSubmit(event) {
  event.preventDefault();
  setError("");
  show("result", false);
  show("explanation", false);
  $("submit").disabled = true;
  try {
    const inputs = await collectInputs();
    const answer = await postJSON("/predict", { inputs });
    renderPredictions(answer.predictions);
    if (card && card.kind === "segmentation") return; // masks are the answer; explanations: biodl explain
    const explanation = await postJSON("/explain", { input: inputs[0] });
    $("explanation-image").src = "data:image/png;base64," + explanation.image_png_base64;
    $("explanation-caption").textContent =
      `${explanation.method.replace(/_/g, " ")} of input 1 for output '${explanation.target}' (score ${fmt(explanation.score)})`;
    show("explanation", true);
  } catch (err) {
    setError(err.message);
  } finally {
    $("submit").disabled = false;
  }
}

async function init() {
  $("form").addEventListener("submit", onSubmit);
  try {
    const response = await fetch("/model");
    card = await response.json();
  } catch (err) {
    setError("could not load the model card: " + err.message);
    return;
  }
  document.title = `biodl · ${card.name}`;
  $("title").textContent = `biodl model: ${card.name}`;
  const labels = card.labels ? ` · classes: ${card.labels.join(", ")}` : "";
  $("summary").textContent =
    `${card.kind} ${card.task || ""} on ${card.inputs.data_type} inputs · ${card.model.architecture} · engine ${card.engine ? card.engine.name : "?"}${labels}`;
  $("input-label").textContent = `Input (${card.inputs.data_type})`;
  $("hint").textContent = `One input per line; each input is ${card.inputs.description}.`;
  show("image-row", card.inputs.data_type === "image");
  if (card.inputs.example !== undefined && card.inputs.example !== null) {
    show("example", true);
    $("example").addEventListener("click", () => {
      const example = card.inputs.example;
      $("input").value = typeof example === "string" ? example : JSON.stringify(example);
    });
  }
  document.body.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", init);
